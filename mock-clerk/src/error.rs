//! Errors: [`Error`] for the library's callers, [`ClerkApiError`] for HTTP answers in
//! Clerk's own error JSON (`{"errors":[{message,long_message,code,meta}],"clerk_trace_id"}`).

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{json, Value};

/// Everything the library can fail with. Each message says what to do next where the
/// caller can do something about it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A key could not be parsed, generated or used.
    #[error("signing key: {0}")]
    Key(String),
    /// A JWT template tried to set a claim Clerk reserves for itself.
    #[error("JWT template '{template}': claim '{claim}' is reserved by Clerk and cannot be set in a template (reserved: azp, exp, iat, iss, jti, nbf, sub)")]
    ReservedClaim {
        /// The template's name.
        template: String,
        /// The reserved claim it tried to set.
        claim: String,
    },
    /// A JWT template's settings are out of Clerk's bounds.
    #[error("JWT template '{template}': {reason}")]
    InvalidTemplate {
        /// The template's name.
        template: String,
        /// What is wrong.
        reason: String,
    },
    /// A token lifetime a caller asked for does not fit a JWT's `exp`.
    #[error("token lifetime: {0}; Clerk admits 30 to 315360000 seconds")]
    InvalidLifetime(String),
    /// No JWT template with this name.
    #[error("no JWT template named '{0}' on this instance: create it with MockClerk::add_template or the [[templates]] section of the config")]
    TemplateNotFound(String),
    /// No user with this id.
    #[error("no user with id '{0}'")]
    UserNotFound(String),
    /// No session with this id.
    #[error("no session with id '{0}'")]
    SessionNotFound(String),
    /// No browser client with this id.
    #[error("no client with id '{0}'")]
    ClientNotFound(String),
    /// No organisation with this id or slug.
    #[error("no organization with id or slug '{0}'")]
    OrganizationNotFound(String),
    /// Another organisation has this slug.
    #[error("organization slug '{0}' is already taken")]
    SlugTaken(String),
    /// The role is neither `org:admin`, `org:member` nor a role defined with `define_role`.
    #[error("no organization role '{0}': use org:admin, org:member or define it first (Store::define_role / MockClerk::define_role)")]
    RoleNotFound(String),
    /// The user is already a member.
    #[error("user '{user}' is already a member of organization '{organization}'")]
    AlreadyMember {
        /// The user.
        user: String,
        /// The organisation.
        organization: String,
    },
    /// The user is not a member.
    #[error("user '{user}' is not a member of organization '{organization}'")]
    MembershipNotFound {
        /// The user.
        user: String,
        /// The organisation.
        organization: String,
    },
    /// A user would be created with an email address another user already has.
    #[error("email address '{0}' is already taken by another user")]
    EmailTaken(String),
    /// The listener could not be bound.
    #[error("cannot listen on {addr}: {source}; {hint}")]
    Bind {
        /// The address asked for.
        addr: std::net::SocketAddr,
        /// The OS error.
        source: std::io::Error,
        /// What to do about it.
        hint: &'static str,
    },
    /// The configuration file is invalid.
    #[error("{path}: {message}")]
    Config {
        /// The file.
        path: String,
        /// What is wrong, with line and column when known.
        message: String,
    },
    /// I/O.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
}

/// A Backend/Frontend API error in Clerk's JSON shape.
#[derive(Debug, Clone)]
pub struct ClerkApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// The `errors[]` entries.
    pub errors: Vec<ClerkErrorItem>,
    /// `Retry-After` seconds, for 429.
    pub retry_after: Option<u64>,
}

/// One entry of `errors[]`.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct ClerkErrorItem {
    /// Short message.
    pub message: String,
    /// Longer message.
    pub long_message: String,
    /// Machine-readable code, e.g. `resource_not_found`.
    pub code: String,
    /// Extra data, e.g. `{"param_name": "email_address"}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub meta: Option<Value>,
}

impl ClerkApiError {
    /// An error with one entry.
    #[must_use]
    pub fn new(status: StatusCode, code: &str, message: &str, long_message: &str) -> Self {
        Self {
            status,
            errors: vec![ClerkErrorItem { message: message.into(), long_message: long_message.into(), code: code.into(), meta: None }],
            retry_after: None,
        }
    }

    /// Adds `meta` to the first entry.
    #[must_use]
    pub fn with_meta(mut self, meta: Value) -> Self {
        if let Some(first) = self.errors.first_mut() {
            first.meta = Some(meta);
        }
        self
    }

    /// 401 `clerk_key_invalid`: what Clerk answers to a wrong or missing secret key.
    #[must_use]
    pub fn key_invalid() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "clerk_key_invalid",
            "Secret Key is invalid",
            "The provided Secret Key is invalid. Make sure that your Secret Key is correct.",
        )
    }

    /// 404 `resource_not_found`.
    #[must_use]
    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "resource_not_found", "not found", "Resource not found")
    }

    /// 404 for a path the API does not have.
    #[must_use]
    pub fn unknown_route(method: &str, path: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, "resource_not_found", "not found", &format!("No route matches {method} {path}"))
    }

    /// 422 for a body that does not parse or a parameter that is invalid.
    #[must_use]
    pub fn unprocessable(message: &str) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "form_param_format_invalid", "is invalid", message)
    }

    /// 422 `form_identifier_exists`, e.g. an email address already taken.
    #[must_use]
    pub fn identifier_exists(param: &str) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "form_identifier_exists",
            "That email address is taken. Please try another.",
            "That email address is taken. Please try another.",
        )
        .with_meta(json!({ "param_name": param }))
    }

    /// 429 with `Retry-After`.
    #[must_use]
    pub fn rate_limited(retry_after_secs: u64) -> Self {
        let mut e = Self::new(StatusCode::TOO_MANY_REQUESTS, "too_many_requests", "Too many requests", "Too many requests, retry later");
        e.retry_after = Some(retry_after_secs);
        e
    }

    /// The JSON body.
    #[must_use]
    pub fn body(&self) -> Value {
        json!({ "errors": self.errors, "clerk_trace_id": crate::ids::base62(32).to_lowercase() })
    }
}

impl IntoResponse for ClerkApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(self.body())).into_response();
        if let Some(secs) = self.retry_after {
            response.headers_mut().insert("retry-after", HeaderValue::from(secs));
        }
        response
    }
}

impl From<Error> for ClerkApiError {
    fn from(e: Error) -> Self {
        match e {
            Error::TemplateNotFound(_)
            | Error::UserNotFound(_)
            | Error::SessionNotFound(_)
            | Error::ClientNotFound(_)
            | Error::OrganizationNotFound(_)
            | Error::MembershipNotFound { .. } => Self::not_found(),
            Error::SlugTaken(_) => {
                Self::new(StatusCode::UNPROCESSABLE_ENTITY, "form_identifier_exists", "That slug is taken. Please try another.", &e.to_string())
                    .with_meta(json!({ "param_name": "slug" }))
            }
            Error::AlreadyMember { .. } => Self::new(StatusCode::UNPROCESSABLE_ENTITY, "already_a_member_in_organization", "already a member", &e.to_string()),
            Error::RoleNotFound(_) => {
                Self::new(StatusCode::UNPROCESSABLE_ENTITY, "form_param_value_invalid", "is invalid", &e.to_string()).with_meta(json!({ "param_name": "role" }))
            }
            Error::EmailTaken(_) => Self::identifier_exists("email_address"),
            Error::ReservedClaim { .. } | Error::InvalidTemplate { .. } | Error::InvalidLifetime(_) => Self::unprocessable(&e.to_string()),
            other => Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal_clerk_error", "Something went wrong", &other.to_string()),
        }
    }
}
