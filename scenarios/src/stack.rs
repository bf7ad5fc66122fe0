//! The backend's stack — its language and the auth libraries it uses — told from the profile
//! and the files it points at (the virtualenv's installed packages, `Cargo.lock`,
//! `package.json`, `go.mod`, `requirements.txt` in a container's build folder), so that a fix
//! names *that* stack's knob (`Validation::leeway` for Rust's `jsonwebtoken`, `leeway=` for
//! PyJWT…) and never another's. What cannot be told gets a stack-neutral fix.

mod knobs;

use std::path::{Path, PathBuf};

use harness::Profile;
use serde::Serialize;

pub use self::knobs::{fix, scenario_knob, Knob};

/// The backend's language, as far as the profile's files tell.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Language {
    /// Nothing told.
    #[default]
    Unknown,
    /// CPython (a virtualenv, uvicorn, gunicorn, `requirements.txt`).
    Python,
    /// Rust (`Cargo.lock`).
    Rust,
    /// Node.js (`package.json`).
    Node,
    /// Go (`go.mod`).
    Go,
}

/// The auth and web libraries a fix can name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Library {
    /// PyJWT (`jwt.decode`, `PyJWKClient`).
    Pyjwt,
    /// Clerk's official Python SDK, `clerk-backend-api`.
    ClerkBackendApi,
    /// `fastapi-clerk-auth`.
    FastapiClerkAuth,
    /// `clerk-django`.
    ClerkDjango,
    /// Django (and Django REST framework).
    Django,
    /// FastAPI.
    Fastapi,
    /// Flask.
    Flask,
    /// Rust's `jsonwebtoken`.
    Jsonwebtoken,
    /// axum.
    Axum,
    /// `clerk-rs`, a community Rust SDK.
    ClerkRs,
    /// `@clerk/backend` (and the framework SDKs built on it).
    ClerkBackendJs,
    /// Node's `jsonwebtoken`.
    NodeJsonwebtoken,
    /// `jose` (Node).
    Jose,
    /// `github.com/golang-jwt/jwt`.
    GolangJwt,
    /// `github.com/clerk/clerk-sdk-go`.
    ClerkGo,
    /// PyJWT's `PyJWKClient` used for the JWKS (directly or by fastapi-clerk-auth), rather
    /// than a cache of the backend's own.
    PyJwkClient,
}

impl Library {
    /// The package's name where it is published.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Pyjwt => "PyJWT",
            Self::ClerkBackendApi => "clerk-backend-api",
            Self::FastapiClerkAuth => "fastapi-clerk-auth",
            Self::ClerkDjango => "clerk-django",
            Self::Django => "Django",
            Self::Fastapi => "FastAPI",
            Self::Flask => "Flask",
            Self::Jsonwebtoken => "jsonwebtoken (Rust)",
            Self::Axum => "axum",
            Self::ClerkRs => "clerk-rs",
            Self::ClerkBackendJs => "@clerk/backend",
            Self::NodeJsonwebtoken => "jsonwebtoken (Node)",
            Self::Jose => "jose",
            Self::GolangJwt => "golang-jwt",
            Self::ClerkGo => "clerk-sdk-go",
            Self::PyJwkClient => "PyJWKClient",
        }
    }

    /// The library named `package` in `language`'s ecosystem, if a fix can name it.
    fn from_package(language: Language, package: &str) -> Option<Self> {
        let p = package.to_ascii_lowercase().replace('_', "-");
        Some(match (language, p.as_str()) {
            (Language::Python, "pyjwt") => Self::Pyjwt,
            (Language::Python, "clerk-backend-api") => Self::ClerkBackendApi,
            (Language::Python, "fastapi-clerk-auth") => Self::FastapiClerkAuth,
            (Language::Python, "clerk-django") => Self::ClerkDjango,
            (Language::Python, "django" | "djangorestframework") => Self::Django,
            (Language::Python, "fastapi") => Self::Fastapi,
            (Language::Python, "flask") => Self::Flask,
            (Language::Rust, "jsonwebtoken") => Self::Jsonwebtoken,
            (Language::Rust, "axum") => Self::Axum,
            (Language::Rust, "clerk-rs") => Self::ClerkRs,
            (Language::Node, "@clerk/backend" | "@clerk/express" | "@clerk/fastify" | "@clerk/nextjs") => Self::ClerkBackendJs,
            (Language::Node, "jsonwebtoken") => Self::NodeJsonwebtoken,
            (Language::Node, "jose") => Self::Jose,
            (Language::Go, "github.com/golang-jwt/jwt/v5" | "github.com/golang-jwt/jwt/v4") => Self::GolangJwt,
            (Language::Go, "github.com/clerk/clerk-sdk-go/v2") => Self::ClerkGo,
            _ => return None,
        })
    }
}

/// What the harness could tell of the backend's stack, and from what.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Stack {
    /// The language.
    pub language: Language,
    /// The libraries found, in a fixed order.
    pub libraries: Vec<Library>,
    /// Where each was read (a file, a command), for the report.
    pub evidence: Vec<String>,
}

impl Stack {
    /// Whether `library` was found.
    #[must_use]
    pub fn has(&self, library: Library) -> bool {
        self.libraries.contains(&library)
    }

    /// `Rust: jsonwebtoken (Rust), axum (Cargo.lock)`, or `not told (…)`.
    #[must_use]
    pub fn describe(&self) -> String {
        if self.language == Language::Unknown {
            return "not told (no virtualenv, Cargo.lock, package.json or go.mod found from the profile): fixes are stack-neutral".into();
        }
        let libs: Vec<&str> = self.libraries.iter().map(|l| l.name()).collect();
        format!(
            "{:?}{} — read from {}",
            self.language,
            if libs.is_empty() { String::new() } else { format!(": {}", libs.join(", ")) },
            if self.evidence.is_empty() { "the command".to_string() } else { self.evidence.join("; ") }
        )
    }

    /// Tells the stack of `profile`'s backend from the files it points at.
    #[must_use]
    pub fn detect(profile: &Profile) -> Self {
        let mut stack = Self::default();
        if let Some(process) = &profile.process {
            let cwd = profile.process_cwd().ok();
            let program = process.command.first().map(|p| p.get().clone()).unwrap_or_default();
            // A bare name (`python`) is what PATH finds: the user's active virtualenv.
            let program_path = if program.contains('/') {
                cwd.as_ref().map(|c| c.join(&program)).filter(|p| p.exists())
            } else {
                std::env::var_os("PATH").and_then(|paths| std::env::split_paths(&paths).map(|d| d.join(&program)).find(|p| p.is_file()))
            };
            stack.read_program(&program, program_path.as_deref(), cwd.as_deref());
            if let Some(dir) = &cwd {
                stack.read_folder(dir);
            }
        }
        if let Some(dir) = profile.container.as_ref().and_then(|_| profile.build_context()) {
            stack.read_folder(&dir);
        }
        if stack.language == Language::Python {
            if let Some(dir) = profile.process.as_ref().and_then(|_| profile.process_cwd().ok()).or_else(|| profile.build_context()) {
                stack.keep_imported(&dir);
            }
        }
        stack.libraries.sort();
        stack.libraries.dedup();
        stack
    }

    /// Drops the Python auth libraries that are installed (or listed) but that no source file
    /// under `dir` imports — a `requirements.txt` line nobody uses must not choose the fix.
    /// PyJWT stays while a library built on it (fastapi-clerk-auth, clerk-django) is imported.
    fn keep_imported(&mut self, dir: &Path) {
        let modules = [
            (Library::Pyjwt, "jwt"),
            (Library::ClerkBackendApi, "clerk_backend_api"),
            (Library::FastapiClerkAuth, "fastapi_clerk_auth"),
            (Library::ClerkDjango, "clerk_django"),
        ];
        let mut imported = std::collections::BTreeSet::new();
        let mut scanned = 0;
        let mut jwk_client = false;
        python_sources(dir, 0, &mut scanned, &mut |text| {
            jwk_client |= text.contains("PyJWKClient");
            for line in text.lines().map(str::trim_start) {
                for (library, module) in modules {
                    let names_it =
                        |rest: Option<&str>| rest.is_some_and(|r| r.starts_with(module) && r[module.len()..].starts_with([' ', '.', ',', '\n']) || r == module);
                    if names_it(line.strip_prefix("import ")) || names_it(line.strip_prefix("from ")) {
                        imported.insert(library);
                    }
                }
            }
        });
        if scanned == 0 {
            return;
        }
        let wrapper = imported.contains(&Library::FastapiClerkAuth) || imported.contains(&Library::ClerkDjango) || imported.contains(&Library::ClerkBackendApi);
        let before = self.libraries.clone();
        self.libraries.retain(|l| match l {
            Library::ClerkBackendApi | Library::FastapiClerkAuth | Library::ClerkDjango => imported.contains(l),
            Library::Pyjwt => imported.contains(l) || wrapper,
            _ => true,
        });
        if jwk_client || imported.contains(&Library::FastapiClerkAuth) {
            self.libraries.push(Library::PyJwkClient);
        }
        let dropped: Vec<&str> = before.iter().filter(|l| !self.libraries.contains(l)).map(|l| l.name()).collect();
        if !dropped.is_empty() {
            self.evidence.push(format!("{} installed but imported by none of {scanned} source files under {}", dropped.join(", "), display(dir)));
        }
    }

    fn set_language(&mut self, language: Language) {
        if self.language == Language::Unknown {
            self.language = language;
        }
    }

    fn add(&mut self, language: Language, packages: impl IntoIterator<Item = String>, evidence: String) {
        let found: Vec<Library> = packages.into_iter().filter_map(|p| Library::from_package(language, &p)).collect();
        self.set_language(language);
        if !found.is_empty() && !self.evidence.contains(&evidence) {
            self.evidence.push(evidence);
        }
        self.libraries.extend(found);
    }

    /// The command's program: a virtualenv's interpreter or script, a Python server, node, or
    /// a binary under a Cargo `target/`.
    fn read_program(&mut self, program: &str, path: Option<&Path>, cwd: Option<&Path>) {
        let name = Path::new(program).file_name().and_then(|n| n.to_str()).unwrap_or(program);
        let python_names = ["python", "uvicorn", "gunicorn", "hypercorn", "daphne", "flask", "granian", "waitress-serve"];
        if python_names.iter().any(|p| name.starts_with(p)) || program.contains("/.venv/") || program.starts_with(".venv/") {
            self.set_language(Language::Python);
            // <venv>/bin/<program>: the venv's site-packages tell the libraries.
            let venv = path.and_then(Path::parent).filter(|b| b.ends_with("bin")).and_then(Path::parent).map(Path::to_path_buf);
            let venv = venv.or_else(|| cwd.map(|c| c.join(".venv"))).filter(|v| v.join("pyvenv.cfg").exists());
            if let Some(venv) = venv {
                self.read_venv(&venv);
            }
        } else if ["node", "npm", "npx", "bun", "deno"].contains(&name) {
            self.set_language(Language::Node);
        } else if let Some(path) = path {
            // A binary under <project>/target/<profile>/: a Cargo project.
            let project = path.ancestors().find(|a| a.file_name().is_some_and(|n| n == "target")).and_then(Path::parent);
            if let Some(project) = project {
                self.read_folder(project);
            }
        }
    }

    fn read_venv(&mut self, venv: &Path) {
        let Ok(lib) = std::fs::read_dir(venv.join("lib")) else { return };
        for python in lib.flatten() {
            let site = python.path().join("site-packages");
            let Ok(entries) = std::fs::read_dir(&site) else { continue };
            let packages: Vec<String> = entries
                .flatten()
                .filter_map(|e| e.file_name().to_str().and_then(|n| n.strip_suffix(".dist-info")).map(str::to_string))
                .map(|n| n.rsplit_once('-').map_or(n.clone(), |(name, _version)| name.to_string()))
                .collect();
            self.add(Language::Python, packages, format!("installed packages in {}", display(&site)));
        }
    }

    /// `Cargo.lock`, `package.json`, `go.mod`, `requirements.txt`/`pyproject.toml` in `dir`.
    fn read_folder(&mut self, dir: &Path) {
        let read = |name: &str| std::fs::read_to_string(dir.join(name)).ok();
        if let Some(lock) = read("Cargo.lock") {
            let packages = lock.lines().filter_map(|l| l.strip_prefix("name = \"")).map(|n| n.trim_end_matches('"').to_string());
            self.add(Language::Rust, packages.collect::<Vec<_>>(), display(&dir.join("Cargo.lock")));
        } else if let Some(manifest) = read("Cargo.toml") {
            let packages = manifest.lines().filter_map(|l| l.split_once('=').map(|(k, _)| k.trim().to_string()));
            self.add(Language::Rust, packages.collect::<Vec<_>>(), display(&dir.join("Cargo.toml")));
        }
        if let Some(json) = read("package.json") {
            let packages: Vec<String> = serde_json::from_str::<serde_json::Value>(&json)
                .ok()
                .map(|v| {
                    ["dependencies", "devDependencies"]
                        .iter()
                        .filter_map(|k| v.get(k).and_then(serde_json::Value::as_object))
                        .flat_map(|o| o.keys().cloned())
                        .collect()
                })
                .unwrap_or_default();
            self.add(Language::Node, packages, display(&dir.join("package.json")));
        }
        if let Some(gomod) = read("go.mod") {
            let packages = gomod.lines().filter_map(|l| l.split_whitespace().find(|w| w.contains('/'))).map(str::to_string);
            self.add(Language::Go, packages.collect::<Vec<_>>(), display(&dir.join("go.mod")));
        }
        for file in ["requirements.txt", "pyproject.toml"] {
            if let Some(text) = read(file) {
                let packages = text.lines().map(|l| {
                    let l = l.trim().trim_start_matches('"');
                    l.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')).next().unwrap_or("").to_string()
                });
                self.add(Language::Python, packages.collect::<Vec<_>>(), display(&dir.join(file)));
            }
        }
    }
}

/// Calls `each` with the text of every `.py` file under `dir` (not in virtualenvs, caches or
/// VCS folders; at most 5,000 files, 8 levels deep, 256 KiB each), counting them in `scanned`.
fn python_sources(dir: &Path, depth: usize, scanned: &mut usize, each: &mut dyn FnMut(&str)) {
    const SKIP: [&str; 8] = [".venv", "venv", "node_modules", ".git", "site-packages", "__pycache__", "target", ".tox"];
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        if *scanned >= 5000 {
            return;
        }
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let Ok(kind) = entry.file_type() else { continue };
        if kind.is_dir() && depth < 8 && !SKIP.contains(&name.as_ref()) && !name.starts_with('.') {
            python_sources(&path, depth + 1, scanned, each);
        } else if kind.is_file() && name.ends_with(".py") && entry.metadata().is_ok_and(|m| m.len() <= 256 * 1024) {
            if let Ok(text) = std::fs::read_to_string(&path) {
                *scanned += 1;
                each(&text);
            }
        }
    }
}

fn display(path: &Path) -> String {
    let path = &std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
    path.strip_prefix(&cwd).unwrap_or(path).display().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stack(language: Language, libraries: &[Library]) -> Stack {
        Stack { language, libraries: libraries.to_vec(), evidence: vec![] }
    }

    #[test]
    fn a_rust_backend_gets_no_pyjwt_advice() {
        let rust = stack(Language::Rust, &[Library::Axum, Library::Jsonwebtoken]);
        for knob in [Knob::Leeway, Knob::VerifyExp, Knob::VerifyNbf, Knob::VerifyIat, Knob::RequireSub, Knob::JwksLifetime, Knob::JwksRefetch] {
            let text = fix(knob, &rust);
            assert!(!text.contains("PyJWT") && !text.contains("jwt.decode") && !text.contains("FastAPI"), "{knob:?}: {text}");
        }
        assert!(fix(Knob::Leeway, &rust).contains("Validation::leeway"));
    }

    #[test]
    fn an_unknown_stack_gets_a_neutral_fix() {
        let unknown = Stack::default();
        assert!(!fix(Knob::Leeway, &unknown).contains("PyJWT"));
        assert!(fix(Knob::Leeway, &stack(Language::Python, &[Library::Pyjwt])).contains("leeway=5"));
    }

    #[test]
    fn an_installed_library_nobody_imports_does_not_choose_the_fix() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("app/utils")).expect("mkdir");
        std::fs::write(dir.path().join("app/utils/auth.py"), "import os\nimport jwt\nfrom jwt import PyJWKClient\n").expect("write");
        let mut stack = stack(Language::Python, &[Library::ClerkBackendApi, Library::Fastapi, Library::Pyjwt]);
        stack.keep_imported(dir.path());
        assert!(stack.has(Library::Pyjwt) && stack.has(Library::Fastapi), "{stack:?}");
        assert!(!stack.has(Library::ClerkBackendApi), "{stack:?}");
        assert!(fix(Knob::Leeway, &stack).contains("leeway=5"), "{}", fix(Knob::Leeway, &stack));

        // The SDK imported: its knobs, PyJWT kept beneath it.
        std::fs::write(dir.path().join("main.py"), "from clerk_backend_api import Clerk\n").expect("write");
        let mut sdk = self::stack(Language::Python, &[Library::ClerkBackendApi, Library::Pyjwt]);
        sdk.keep_imported(dir.path());
        assert!(sdk.has(Library::ClerkBackendApi), "{sdk:?}");
        assert!(fix(Knob::Leeway, &sdk).contains("clock_skew_in_ms"));
    }

    #[test]
    fn a_venv_and_a_cargo_lock_are_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        let site = dir.path().join(".venv/lib/python3.11/site-packages");
        std::fs::create_dir_all(site.join("PyJWT-2.15.1.dist-info")).expect("mkdir");
        std::fs::create_dir_all(site.join("fastapi-0.165.0.dist-info")).expect("mkdir");
        std::fs::write(dir.path().join(".venv/pyvenv.cfg"), "home = /usr/bin\n").expect("write");
        let mut python = Stack::default();
        python.read_program(".venv/bin/python", Some(&dir.path().join(".venv/bin/python")), Some(dir.path()));
        assert_eq!(python.language, Language::Python);
        assert!(python.has(Library::Pyjwt) && python.has(Library::Fastapi), "{python:?}");

        let rust_dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(rust_dir.path().join("Cargo.lock"), "[[package]]\nname = \"jsonwebtoken\"\nversion = \"9.3.1\"\n").expect("write");
        let mut rust = Stack::default();
        rust.read_program("target/release/api", Some(&rust_dir.path().join("target/release/api")), Some(rust_dir.path()));
        rust.read_folder(rust_dir.path());
        assert_eq!(rust.language, Language::Rust);
        assert!(rust.has(Library::Jsonwebtoken), "{rust:?}");
    }
}
