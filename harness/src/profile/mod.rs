//! Backend profiles: how to start a backend the harness did not write, how to wire it to the
//! mock, and what correct behaviour looks like for it.
//!
//! A profile is a TOML file (see `profiles/reference.toml`). Unknown keys and bad values are
//! errors that name the file, the line and the allowed values:
//!
//! ```
//! let err = harness::Profile::parse("name = 'x'\nhealth_pth = '/health'\n", "demo.toml", ".")
//!     .expect_err("typo");
//! assert!(err.to_string().starts_with("demo.toml:2:1: unknown field `health_pth`"), "{err}");
//! ```

mod located;
mod required;
mod validate;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use located::{expand, Located, Wiring, PLACEHOLDERS};
pub use required::{Guard, RequiredVar};
pub(crate) use validate::is_env_name;

/// Checks that `text` only uses known `{placeholders}`: `Err((byte offset, message))`.
pub(crate) fn check_template(text: &str) -> std::result::Result<(), (usize, String)> {
    located::parse_template(text).map(|_| ())
}

use crate::error::{HarnessError, Result};

/// A backend profile, validated.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// Short name (`[a-z0-9_-]`), used in logs, database names and reports.
    pub name: Located<String>,
    /// One line for humans.
    #[serde(default)]
    pub description: String,
    /// Path answered with 2xx once the backend is ready, e.g. `/health`.
    pub health_path: Located<String>,
    /// Seconds to wait for the health path after a start (default 30).
    #[serde(default = "default_ready_timeout")]
    pub ready_timeout_secs: u64,
    /// Environment variables without which the backend must refuse to start: names, or
    /// `{ name = "…", guards = "webhook_secret" }` to say what a variable guards.
    #[serde(default)]
    pub required_env: Vec<Located<RequiredVar>>,
    /// Route the backend's outbound HTTPS through the interception proxy (default true).
    #[serde(default = "yes")]
    pub intercept: bool,
    /// How to run it as a local process.
    pub process: Option<ProcessSpec>,
    /// How to run it as a container.
    pub container: Option<ContainerSpec>,
    /// Environment of the backend: values may use `{placeholders}`.
    #[serde(default)]
    pub env: BTreeMap<String, Located<String>>,
    /// Variables the backend (process or container) takes from the harness's own environment
    /// when they are set there, e.g. `["PYTHONPATH", "LD_LIBRARY_PATH"]`. Nothing else of the
    /// harness's environment reaches it (a process also gets `PATH`, `HOME` and a few such),
    /// so Clerk keys in the developer's shell never do. A name may not also be in `[env]`.
    #[serde(default)]
    pub inherit_env: Vec<Located<String>>,
    /// The token the SPA sends.
    pub token: TokenSpec,
    /// What the backend's CORS policy must allow and refuse.
    pub cors: CorsSpec,
    /// Endpoints that need a Clerk token.
    #[serde(default)]
    pub endpoints: Vec<Endpoint>,
    /// Clerk webhook receiver path, if the backend has one.
    #[serde(default)]
    pub webhook_path: Option<Located<String>>,
    /// How to find the synced user.
    pub user: UserSpec,
    /// Where the file was loaded from (relative paths resolve against it).
    #[serde(skip)]
    pub source: ProfileSource,
}

/// Where a profile came from.
#[derive(Debug, Clone, Default)]
pub struct ProfileSource {
    /// File name (or label) used in error messages.
    pub file: String,
    /// Directory that relative paths in the profile are resolved against.
    pub base_dir: PathBuf,
    /// The profile's text, for pointing at a value's line.
    pub text: std::sync::Arc<str>,
}

/// Running the backend as a local process.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessSpec {
    /// Working directory, relative to the profile file; `None` means the user must give
    /// `--backend-dir` / `HARNESS_BACKEND_DIR`.
    #[serde(default)]
    pub cwd: Option<Located<String>>,
    /// Program and arguments; `{port}` is where it must listen (on 127.0.0.1).
    pub command: Vec<Located<String>>,
    /// Commands run once per template database (schema creation), same env and cwd.
    #[serde(default)]
    pub setup: Vec<Vec<Located<String>>>,
    /// Directories (relative to cwd) created if missing before the start, e.g. `static`.
    #[serde(default)]
    pub ensure_dirs: Vec<String>,
    /// What to tell the user when the program is missing, e.g. "run install.sh".
    #[serde(default)]
    pub install_hint: Option<String>,
}

/// Running the backend as a container.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContainerSpec {
    /// `name:tag` of an image in the local store.
    pub image: Located<String>,
    /// Port the backend listens on inside the container.
    pub port: u16,
    /// Overrides the image's command (`{port}` is the container port).
    #[serde(default)]
    pub command: Vec<Located<String>>,
    /// Commands run once per template database in a one-shot container of the image.
    #[serde(default)]
    pub setup: Vec<Vec<Located<String>>>,
    /// Where the per-run CA file is copied in the container (`{ca_file}`, and the
    /// `SSL_CERT_FILE`… variables). The default is outside the system store; a path under
    /// `/usr/local/share/ca-certificates/` makes images that run `update-ca-certificates`
    /// trust it system-wide (slower: the bundle is rebuilt at each start).
    #[serde(default = "default_ca_path")]
    pub ca_path: String,
    /// Builds `image` from the backend's own Dockerfile in this folder (relative to the
    /// profile file) before the first start, and reuses it while the folder's files are
    /// unchanged (the image carries a hash of its inputs as a label).
    #[serde(default)]
    pub build: Option<Located<String>>,
    /// The Dockerfile's name inside `build` (default `Dockerfile`).
    #[serde(default)]
    pub dockerfile: Option<String>,
}

/// The token kind the SPA sends, and what the backend checks in it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenSpec {
    /// Default session token or a JWT template.
    pub kind: Located<TokenKind>,
    /// Template name (`getToken({ template })`), for `kind = "template"`.
    #[serde(default)]
    pub template: Option<String>,
    /// Template claims (Clerk shortcodes such as `{{user.primary_email_address}}` allowed).
    #[serde(default)]
    pub claims: Option<toml::Table>,
    /// Audience(s) the backend requires, if any.
    #[serde(default)]
    pub audience: Vec<String>,
    /// Authorized parties (`azp`) the backend accepts, if it checks them.
    #[serde(default)]
    pub authorized_parties: Vec<String>,
    /// How the SPA sends the token: an `Authorization: Bearer` header (default) or, like a
    /// same-site app whose `clerk-js` keeps the session in cookies, the `__session` cookie
    /// (with `__client_uat` and, on development instances, `__clerk_db_jwt`; each plain and
    /// suffixed).
    #[serde(default)]
    pub transport: Located<Transport>,
}

/// How the SPA sends its token to the backend.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    /// `Authorization: Bearer <token>` (cross-origin API calls).
    #[default]
    Bearer,
    /// The cookies `clerk-js` sets on the application's domain (`__session`, …).
    Cookie,
}

/// What `getToken()` returns in the SPA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenKind {
    /// The default session token (`getToken()`).
    Session,
    /// A JWT template (`getToken({ template })`).
    Template,
}

/// CORS expectations.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CorsSpec {
    /// Origins that must be allowed; the first is the SPA's origin.
    pub allowed_origins: Vec<Located<String>>,
    /// Origins that must not be allowed.
    #[serde(default)]
    pub disallowed_origins: Vec<Located<String>>,
    /// Whether credentials are allowed (then never `*`).
    #[serde(default = "yes")]
    pub credentials: bool,
}

/// A protected endpoint.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Endpoint {
    /// HTTP method.
    pub method: Method,
    /// Path, starting with `/`.
    pub path: Located<String>,
    /// Status of a successful call with a valid token.
    #[serde(default = "default_status")]
    pub status: Located<u16>,
    /// Whether a successful call creates or updates the local user row.
    #[serde(default)]
    pub syncs_user: bool,
    /// The organization role the endpoint requires of the active organization
    /// (`org:admin`, or a custom `org:<key>`): a member without it gets 403.
    #[serde(default)]
    pub org_role: Option<Located<String>>,
    /// The organization permission the endpoint requires (`org:<feature>:<permission>`).
    #[serde(default)]
    pub org_permission: Option<Located<String>>,
}

/// What an organization-gated endpoint requires of the active organization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrgGate {
    /// A role, e.g. `org:admin`.
    Role(String),
    /// A permission, `org:<feature>:<permission>`.
    Permission(String),
}

impl Endpoint {
    /// What the endpoint requires of the active organization, if it is org-gated.
    #[must_use]
    pub fn org_gate(&self) -> Option<OrgGate> {
        self.org_role.as_ref().map(|r| OrgGate::Role(r.get().clone())).or_else(|| self.org_permission.as_ref().map(|p| OrgGate::Permission(p.get().clone())))
    }
}

/// Methods an endpoint may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[allow(clippy::upper_case_acronyms)]
pub enum Method {
    /// GET
    GET,
    /// POST
    POST,
    /// PUT
    PUT,
    /// PATCH
    PATCH,
    /// DELETE
    DELETE,
}

impl Method {
    /// The reqwest method.
    #[must_use]
    pub fn as_reqwest(self) -> reqwest::Method {
        match self {
            Self::GET => reqwest::Method::GET,
            Self::POST => reqwest::Method::POST,
            Self::PUT => reqwest::Method::PUT,
            Self::PATCH => reqwest::Method::PATCH,
            Self::DELETE => reqwest::Method::DELETE,
        }
    }
}

/// Finding the synced user.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserSpec {
    /// A query with `$1` = Clerk user id, returning the columns `clerk_user_id`, `email`,
    /// `first_name`, `last_name` (any may be NULL).
    pub sql: Located<String>,
    /// Optional: inserts a pre-Clerk row (an email, `$1`, and no Clerk id), for the
    /// "legacy row is linked" scenario.
    #[serde(default)]
    pub legacy_insert_sql: Option<Located<String>>,
    /// The Clerk user fields the backend stores (default: all of them). The sync scenarios
    /// judge only these, and say which they skipped; `sql` may return NULL for the others.
    #[serde(default = "all_user_fields")]
    pub fields: Vec<UserField>,
}

/// A Clerk user field a backend may keep in its user table (`[user] fields`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UserField {
    /// The primary email address (column `email`).
    Email,
    /// `first_name`.
    FirstName,
    /// `last_name`.
    LastName,
}

impl UserField {
    /// Every field, in the order of the user SQL's columns.
    pub const ALL: [Self; 3] = [Self::Email, Self::FirstName, Self::LastName];

    /// The column (and the `fields` entry) it is named by.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::FirstName => "first_name",
            Self::LastName => "last_name",
        }
    }
}

impl UserSpec {
    /// Whether the backend stores `field`.
    #[must_use]
    pub fn stores(&self, field: UserField) -> bool {
        self.fields.contains(&field)
    }

    /// The fields it does not store, by name (for "skipped: …" notes).
    #[must_use]
    pub fn skipped(&self) -> Vec<&'static str> {
        UserField::ALL.into_iter().filter(|f| !self.stores(*f)).map(UserField::name).collect()
    }
}

fn all_user_fields() -> Vec<UserField> {
    UserField::ALL.to_vec()
}

/// A TOML syntax or type error at its line and column in `text`.
fn toml_error(e: &toml::de::Error, text: &str, file: &str) -> HarnessError {
    let (line, column) = e.span().map_or((1, 1), |span| located::line_col(text, span.start));
    HarnessError::Profile { file: file.into(), line, column, message: e.message().trim().to_owned() }
}

fn yes() -> bool {
    true
}
fn default_ready_timeout() -> u64 {
    30
}
fn default_status() -> Located<u16> {
    Located::new(200)
}
fn default_ca_path() -> String {
    "/etc/clerk-harness/ca.pem".into()
}

impl Profile {
    /// Parses and validates a profile. `file` names it in errors; relative paths in it
    /// resolve against `base_dir`.
    ///
    /// # Errors
    /// [`HarnessError::Profile`] with line, column and the allowed values.
    pub fn parse(text: &str, file: &str, base_dir: impl AsRef<Path>) -> Result<Self> {
        let profile: Self = toml::from_str(text).map_err(|e| toml_error(&e, text, file))?;
        Self::checked(profile, text, file, base_dir)
    }

    /// Parses the `[tool.clerk-harness]` table of a `pyproject.toml`, so a Python project keeps
    /// its profile beside its other tools' settings. Lines and columns in errors are the
    /// pyproject's own; relative paths resolve against `base_dir` (the pyproject's folder).
    ///
    /// ```
    /// let text = "[project]\nname = 'api'\n[tool.ruff]\nline-length = 100\n\
    ///     [tool.clerk-harness]\nname = 'api'\nhealth_pth = '/health'\n";
    /// let err = harness::Profile::parse_pyproject(text, "pyproject.toml", ".").expect_err("typo");
    /// assert!(err.to_string().starts_with("pyproject.toml:7:1: unknown field `health_pth`"), "{err}");
    /// ```
    ///
    /// # Errors
    /// [`HarnessError::Profile`], also when the file has no `[tool.clerk-harness]` table.
    pub fn parse_pyproject(text: &str, file: &str, base_dir: impl AsRef<Path>) -> Result<Self> {
        #[derive(Deserialize)]
        struct PyProject {
            tool: Option<Tools>,
        }
        #[derive(Deserialize)]
        struct Tools {
            #[serde(rename = "clerk-harness")]
            clerk_harness: Option<Profile>,
        }
        let pyproject: PyProject = toml::from_str(text).map_err(|e| toml_error(&e, text, file))?;
        let Some(profile) = pyproject.tool.and_then(|t| t.clerk_harness) else {
            return Err(HarnessError::Profile {
                file: file.into(),
                line: 1,
                column: 1,
                message: "no [tool.clerk-harness] table: put the profile's keys there (name, health_path, \
                          [tool.clerk-harness.process], [[tool.clerk-harness.endpoints]] …), or pass a profile .toml file"
                    .into(),
            });
        };
        Self::checked(profile, text, file, base_dir)
    }

    /// Records where `profile` came from and validates it against its source text.
    fn checked(mut profile: Self, text: &str, file: &str, base_dir: impl AsRef<Path>) -> Result<Self> {
        profile.source = ProfileSource { file: file.into(), base_dir: base_dir.as_ref().to_path_buf(), text: text.into() };
        validate::check(&profile, text).map_err(|(offset, message)| {
            let (line, column) = located::line_col(text, offset);
            HarnessError::Profile { file: file.into(), line, column, message }
        })?;
        Ok(profile)
    }

    /// Loads a profile file: a profile TOML, or a `pyproject.toml` whose
    /// `[tool.clerk-harness]` table is the profile ([`Profile::parse_pyproject`]).
    ///
    /// # Errors
    /// The file cannot be read, or [`HarnessError::Profile`].
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| HarnessError::ProfileRead { path: path.to_path_buf(), source })?;
        let base = path.parent().map_or_else(|| PathBuf::from("."), Path::to_path_buf);
        if path.file_name().is_some_and(|name| name == "pyproject.toml") {
            return Self::parse_pyproject(&text, &path.display().to_string(), base);
        }
        Self::parse(&text, &path.display().to_string(), base)
    }

    /// The shipped profile of the reference backend (`profiles/reference.toml`), whose `cwd`
    /// points at `backends/reference/` of this checkout.
    ///
    /// # Errors
    /// See [`Profile::from_file`].
    pub fn reference() -> Result<Self> {
        Self::from_file(profiles_dir().join("reference.toml"))
    }

    /// The shipped orientor profile, run from the user's checkout of orientor's `backend/`.
    ///
    /// # Errors
    /// See [`Profile::from_file`].
    pub fn orientor(backend_dir: impl AsRef<Path>) -> Result<Self> {
        Ok(Self::from_file(profiles_dir().join("orientor.toml"))?.with_backend_dir(backend_dir))
    }

    /// Runs the process backend from `dir` instead of the profile's `cwd` (`--backend-dir`).
    #[must_use]
    pub fn with_backend_dir(mut self, dir: impl AsRef<Path>) -> Self {
        if let Some(process) = &mut self.process {
            let dir = std::path::absolute(dir.as_ref()).unwrap_or_else(|_| dir.as_ref().to_path_buf());
            process.cwd = Some(Located::new(dir.display().to_string()));
        }
        self
    }

    /// The folder `[container] build` names, resolved against the profile's directory.
    #[must_use]
    pub fn build_context(&self) -> Option<PathBuf> {
        let build = self.container.as_ref()?.build.as_ref()?;
        Some(self.source.base_dir.join(build.get()))
    }

    /// The process backend's working directory, resolved against the profile's directory.
    ///
    /// # Errors
    /// [`HarnessError::Missing`] when the profile leaves it to the user and none was given.
    pub fn process_cwd(&self) -> Result<PathBuf> {
        let cwd = self.process.as_ref().and_then(|p| p.cwd.as_ref()).ok_or_else(|| HarnessError::Missing {
            what: format!("profile {} does not say where the backend's code is", self.name),
            fix: "pass --backend-dir (or set HARNESS_BACKEND_DIR) to your checkout's backend/ folder".into(),
        })?;
        let path = self.source.base_dir.join(cwd.get());
        Ok(std::path::absolute(&path).unwrap_or(path))
    }

    /// `file:line` of a value of this profile (just `file` for a value not read from it).
    #[must_use]
    pub fn location<T>(&self, value: &Located<T>) -> String {
        let span = value.span();
        if span.is_empty() || span.start > self.source.text.len() {
            return self.source.file.clone();
        }
        let (line, _) = located::line_col(&self.source.text, span.start);
        format!("{}:{line}", self.source.file)
    }

    /// The origin the SPA runs on: the first allowed CORS origin.
    #[must_use]
    pub fn spa_origin(&self) -> &str {
        self.cors.allowed_origins.first().map_or("http://localhost:3000", |o| o.get().as_str())
    }

    /// What the required variable `var` guards: the profile's `guards`, else inferred from
    /// the placeholder its `[env]` value uses ([`Guard::of_value`]).
    #[must_use]
    pub fn guard_of(&self, var: &RequiredVar) -> Guard {
        var.guards.unwrap_or_else(|| self.env.get(&var.name).map_or(Guard::Other, |value| Guard::of_value(value.get())))
    }

    /// The endpoints whose successful call syncs the user.
    pub fn sync_endpoints(&self) -> impl Iterator<Item = &Endpoint> {
        self.endpoints.iter().filter(|e| e.syncs_user)
    }

    /// The endpoints gated by an organization role or permission.
    pub fn org_endpoints(&self) -> impl Iterator<Item = &Endpoint> {
        self.endpoints.iter().filter(|e| e.org_gate().is_some())
    }
}

/// `profiles/` of this checkout.
#[must_use]
pub fn profiles_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("profiles")
}
