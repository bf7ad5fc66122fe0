//! A small Clerk-authenticated API: axum, Clerk session tokens verified with `jsonwebtoken`
//! against the instance's JWKS, and a local `users` table filled from Clerk's Backend API on
//! a user's first request. No Clerk SDK: this is the pattern blog posts and the crates'
//! READMEs show for Rust.

use std::collections::HashMap;
use std::env;
use std::sync::Arc;

use anyhow::{Context, anyhow};
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use axum_extra::TypedHeader;
use axum_extra::headers::Authorization;
use axum_extra::headers::authorization::Bearer;
use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use serde::Deserialize;
use serde_json::json;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use tokio::sync::RwLock;
use tower_http::cors::CorsLayer;
use tower_http::trace::TraceLayer;
use tracing_subscriber::EnvFilter;

#[derive(Clone)]
struct AppState {
    db: PgPool,
    http: reqwest::Client,
    jwks: Arc<JwksCache>,
    clerk_secret_key: String,
}

/// Clerk's public signing keys, by `kid`.
///
/// The JWKS is fetched lazily: on the first token, and again whenever a token carries a `kid`
/// that is not in the map (Clerk rotated its signing key), with no cooldown. Fetched keys are
/// added to the map and kept for the life of the process (no TTL): a known `kid` never
/// triggers a fetch, so verification keeps working while the JWKS endpoint is down.
struct JwksCache {
    url: String,
    keys: RwLock<HashMap<String, DecodingKey>>,
}

impl JwksCache {
    fn new(url: String) -> Self {
        Self { url, keys: RwLock::new(HashMap::new()) }
    }

    async fn key(&self, http: &reqwest::Client, kid: &str) -> anyhow::Result<DecodingKey> {
        if let Some(key) = self.keys.read().await.get(kid) {
            return Ok(key.clone());
        }
        // Unknown kid: refetch the key set once, then look again.
        let jwks: JwkSet = http.get(&self.url).send().await?.error_for_status()?.json().await?;
        let mut keys = self.keys.write().await;
        for jwk in &jwks.keys {
            if let (Some(id), AlgorithmParameters::RSA(rsa)) = (&jwk.common.key_id, &jwk.algorithm) {
                keys.insert(id.clone(), DecodingKey::from_rsa_components(&rsa.n, &rsa.e)?);
            }
        }
        tracing::info!(keys = keys.len(), "fetched JWKS from {}", self.url);
        keys.get(kid).cloned().ok_or_else(|| anyhow!("no key with kid {kid} in the JWKS"))
    }
}

/// The claims of a Clerk session token we use.
#[derive(Debug, Deserialize)]
struct ClerkClaims {
    sub: String,
    sid: Option<String>,
}

impl AppState {
    async fn verify(&self, token: &str) -> anyhow::Result<ClerkClaims> {
        let header = decode_header(token)?;
        let kid = header.kid.context("token header has no kid")?;
        let key = self.jwks.key(&self.http, &kid).await?;
        let validation = Validation::new(Algorithm::RS256);
        let data = decode::<ClerkClaims>(token, &key, &validation)?;
        Ok(data.claims)
    }
}

/// The signed-in Clerk user of a request.
struct AuthUser {
    user_id: String,
}

enum AuthError {
    MissingToken,
    InvalidToken,
}

impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        let message = match self {
            AuthError::MissingToken => "missing bearer token",
            AuthError::InvalidToken => "invalid token",
        };
        (StatusCode::UNAUTHORIZED, [(header::WWW_AUTHENTICATE, "Bearer")], Json(json!({ "error": message }))).into_response()
    }
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let TypedHeader(Authorization(bearer)) =
            TypedHeader::<Authorization<Bearer>>::from_request_parts(parts, state).await.map_err(|_| AuthError::MissingToken)?;
        let claims = state.verify(bearer.token()).await.map_err(|err| {
            tracing::warn!(error = %err, "rejected bearer token");
            AuthError::InvalidToken
        })?;
        tracing::debug!(sub = %claims.sub, sid = ?claims.sid, "authenticated");
        Ok(AuthUser { user_id: claims.sub })
    }
}

/// Any other error: a 500 (axum's `anyhow-error-response` example).
struct AppError(anyhow::Error);

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        tracing::error!(error = %format!("{:#}", self.0), "request failed");
        (StatusCode::INTERNAL_SERVER_ERROR, format!("Something went wrong: {}", self.0)).into_response()
    }
}

impl<E: Into<anyhow::Error>> From<E> for AppError {
    fn from(err: E) -> Self {
        Self(err.into())
    }
}

/// A user as Clerk's Backend API returns it (`GET /v1/users/{id}`), the fields we keep.
#[derive(Deserialize)]
struct ClerkUser {
    id: String,
    first_name: Option<String>,
    last_name: Option<String>,
    primary_email_address_id: Option<String>,
    email_addresses: Vec<ClerkEmailAddress>,
}

#[derive(Deserialize)]
struct ClerkEmailAddress {
    id: String,
    email_address: String,
}

impl ClerkUser {
    fn primary_email(&self) -> Option<&str> {
        let primary = self.primary_email_address_id.as_deref()?;
        self.email_addresses.iter().find(|e| e.id == primary).map(|e| e.email_address.as_str())
    }
}

/// Creates the local row of a Clerk user on their first request.
async fn ensure_user(state: &AppState, clerk_user_id: &str) -> anyhow::Result<()> {
    let existing: Option<i64> = sqlx::query_scalar("SELECT id FROM users WHERE clerk_user_id = $1").bind(clerk_user_id).fetch_optional(&state.db).await?;
    if existing.is_some() {
        return Ok(());
    }
    let user: ClerkUser = state
        .http
        .get(format!("https://api.clerk.com/v1/users/{clerk_user_id}"))
        .bearer_auth(&state.clerk_secret_key)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    sqlx::query(
        "INSERT INTO users (clerk_user_id, email, first_name, last_name) VALUES ($1, $2, $3, $4)
         ON CONFLICT (clerk_user_id) DO UPDATE
         SET email = EXCLUDED.email, first_name = EXCLUDED.first_name, last_name = EXCLUDED.last_name, updated_at = now()",
    )
    .bind(&user.id)
    .bind(user.primary_email())
    .bind(&user.first_name)
    .bind(&user.last_name)
    .execute(&state.db)
    .await?;
    tracing::info!(clerk_user_id = %user.id, "synced user from Clerk");
    Ok(())
}

async fn health() -> &'static str {
    "ok"
}

async fn me(State(state): State<AppState>, user: AuthUser) -> Result<Json<serde_json::Value>, AppError> {
    ensure_user(&state, &user.user_id).await?;
    Ok(Json(json!({ "user_id": user.user_id })))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| format!("{}=debug,tower_http=debug", env!("CARGO_CRATE_NAME")).into()))
        .init();

    let jwks_url = env::var("CLERK_JWKS_URL").expect("CLERK_JWKS_URL must be set");
    let clerk_secret_key = env::var("CLERK_SECRET_KEY").expect("CLERK_SECRET_KEY must be set");
    let database_url = env::var("DATABASE_URL").expect("DATABASE_URL must be set");
    let bind_addr = env::var("BIND_ADDR").unwrap_or_else(|_| "0.0.0.0:8080".to_string());
    let origins: Vec<HeaderValue> = env::var("CORS_ORIGINS")
        .unwrap_or_else(|_| "http://localhost:3000".to_string())
        .split(',')
        .map(|origin| origin.trim().parse().expect("invalid origin in CORS_ORIGINS"))
        .collect();

    let db = PgPoolOptions::new().max_connections(5).connect(&database_url).await.context("connecting to DATABASE_URL")?;
    sqlx::migrate!().run(&db).await?;

    let state = AppState { db, http: reqwest::Client::new(), jwks: Arc::new(JwksCache::new(jwks_url)), clerk_secret_key };

    let cors = CorsLayer::new()
        .allow_origin(origins)
        .allow_methods([Method::GET, Method::POST, Method::PUT, Method::DELETE])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
        .allow_credentials(true);

    let app = Router::new().route("/health", get(health)).route("/api/me", get(me)).layer(TraceLayer::new_for_http()).layer(cors).with_state(state);

    let listener = tokio::net::TcpListener::bind(&bind_addr).await?;
    tracing::info!("listening on {}", listener.local_addr()?);
    axum::serve(listener, app).with_graceful_shutdown(shutdown_signal()).await?;
    Ok(())
}

/// Ctrl-C or SIGTERM (axum's `graceful-shutdown` example).
async fn shutdown_signal() {
    let ctrl_c = async {
        tokio::signal::ctrl_c().await.expect("failed to install Ctrl+C handler");
    };
    let terminate = async {
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("failed to install signal handler").recv().await;
    };
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
