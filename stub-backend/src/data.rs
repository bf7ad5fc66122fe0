//! The stub's database mode: when the harness hands it `DATABASE_URL`, it keeps a `users`
//! table, syncs a user from `GET /v1/users/{id}` on [`crate::SYNC_PATH`] and applies
//! Svix-signed webhooks on [`crate::WEBHOOK_PATH`] — correctly, unless a [`crate::Behaviour`]
//! switch of the data slice says otherwise.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use sqlx::postgres::{PgPool, PgPoolOptions};

use crate::Stubbed;

const SCHEMA: &str = "BEGIN;
SELECT pg_advisory_xact_lock(7243002);
CREATE TABLE IF NOT EXISTS users (
    id bigserial PRIMARY KEY,
    clerk_user_id text UNIQUE,
    email text UNIQUE,
    first_name text,
    last_name text,
    clerk_updated_at bigint,
    deleted boolean NOT NULL DEFAULT false
);
CREATE TABLE IF NOT EXISTS webhook_events (svix_id text PRIMARY KEY);
COMMIT;";

/// The stub's database.
pub(crate) struct Db {
    pool: PgPool,
    /// Per Clerk user: whether its first requests race ([`crate::Behaviour::sync_race`]).
    luck: std::sync::Mutex<HashMap<String, bool>>,
    /// Serialises get-then-create for the users that do not race.
    lucky: tokio::sync::Mutex<()>,
}

/// The probability that a new user's concurrent first requests race in the get-then-create
/// ([`crate::Behaviour::sync_race`]): about what a barrier probe measured on a real backend.
pub const RACE_PROBABILITY: f64 = 0.3;

impl Db {
    /// Connects and creates the schema (several starts at once are serialised by a lock).
    pub(crate) async fn connect(url: &str) -> Result<Self, String> {
        let pool = PgPoolOptions::new()
            .max_connections(10)
            // sync.concurrent sends 24 requests at once; on a loaded 2-core machine a 1 s
            // wait for a connection ran out and the stub shed load (503) in a test that
            // expects it to serve every request.
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await
            .map_err(|e| format!("stub-backend: cannot connect to DATABASE_URL: {e}"))?;
        sqlx::raw_sql(SCHEMA).execute(&pool).await.map_err(|e| format!("stub-backend: cannot create the schema: {e}"))?;
        Ok(Self { pool, luck: std::sync::Mutex::new(HashMap::new()), lucky: tokio::sync::Mutex::new(()) })
    }
}

/// Why a write failed.
#[derive(Debug)]
enum WriteError {
    /// The email belongs to another Clerk user's row.
    EmailTaken(String),
    /// Another request created the row first (only without `ON CONFLICT`).
    Race(String),
    /// The database failed (unreachable, terminated…): the driver's text.
    Database(String),
}

impl From<sqlx::Error> for WriteError {
    fn from(e: sqlx::Error) -> Self {
        match e.as_database_error().and_then(|d| d.constraint().map(str::to_owned)) {
            Some(c) if c.contains("email") => Self::EmailTaken(e.to_string()),
            Some(_) => Self::Race(e.to_string()),
            None => Self::Database(e.to_string()),
        }
    }
}

/// The fields the stub keeps of a Clerk user object.
struct ClerkUser {
    id: String,
    email: Option<String>,
    first_name: Option<String>,
    last_name: Option<String>,
    updated_at: Option<i64>,
}

impl ClerkUser {
    fn from_json(user: &Value) -> Option<Self> {
        let emails = user["email_addresses"].as_array().cloned().unwrap_or_default();
        let primary = user["primary_email_address_id"].as_str();
        let email = emails
            .iter()
            .find(|e| e["id"].as_str().is_some() && e["id"].as_str() == primary)
            .or_else(|| emails.first())
            .and_then(|e| e["email_address"].as_str().map(str::to_owned));
        Some(Self {
            id: user["id"].as_str()?.to_owned(),
            email,
            first_name: user["first_name"].as_str().map(str::to_owned),
            last_name: user["last_name"].as_str().map(str::to_owned),
            updated_at: user["updated_at"].as_i64(),
        })
    }
}

impl ClerkUser {
    /// Binds `$1`…`$5` of the upsert statements: id, email, first and last name, `updated_at`.
    fn bind<'q>(
        &'q self,
        query: sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
    ) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
        query.bind(&self.id).bind(&self.email).bind(&self.first_name).bind(&self.last_name).bind(self.updated_at)
    }
}

impl Db {
    /// Links a pre-Clerk row with the same email, then `INSERT … ON CONFLICT DO UPDATE` — in
    /// one statement pair that concurrent requests cannot break; an older `updated_at` than
    /// the row's changes nothing (unless `ignore_order`).
    async fn upsert(&self, user: &ClerkUser, ignore_order: bool) -> Result<(), WriteError> {
        // A concurrent first request of the same user can commit the row while this statement
        // runs: the email then conflicts outside ON CONFLICT's arbiter (clerk_user_id), a race
        // the correct stub lost about once in 30 runs of sync.concurrent. With that row
        // committed, the second try takes the DO UPDATE path; an email that belongs to another
        // Clerk id conflicts again and stays EmailTaken.
        match self.upsert_once(user, ignore_order).await {
            Err(WriteError::EmailTaken(_)) => self.upsert_once(user, ignore_order).await,
            other => other,
        }
    }

    async fn upsert_once(&self, user: &ClerkUser, ignore_order: bool) -> Result<(), WriteError> {
        let mut tx = self.pool.begin().await?;
        user.bind(sqlx::query(
            "UPDATE users SET clerk_user_id = $1, first_name = $3, last_name = $4, clerk_updated_at = $5 \
             WHERE clerk_user_id IS NULL AND lower(email) = lower($2) AND NOT EXISTS (SELECT 1 FROM users WHERE clerk_user_id = $1)",
        ))
        .execute(&mut *tx)
        .await?;
        let newer_only = if ignore_order {
            ""
        } else {
            " WHERE users.clerk_updated_at IS NULL OR EXCLUDED.clerk_updated_at IS NULL OR users.clerk_updated_at <= EXCLUDED.clerk_updated_at"
        };
        user.bind(sqlx::query(&format!(
            "INSERT INTO users (clerk_user_id, email, first_name, last_name, clerk_updated_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (clerk_user_id) DO UPDATE SET email = EXCLUDED.email, first_name = EXCLUDED.first_name, \
             last_name = EXCLUDED.last_name, clerk_updated_at = EXCLUDED.clerk_updated_at{newer_only}"
        )))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// [`crate::Behaviour::sync_race`]: get, then create, nothing to handle a concurrent create. A
    /// user's first requests race with [`RACE_PROBABILITY`] (a 30 ms window); otherwise they
    /// happen to run one after the other.
    async fn get_then_create(&self, user: &ClerkUser) -> Result<(), WriteError> {
        let unlucky = *self
            .luck
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(user.id.clone())
            .or_insert_with(|| rand::random::<f64>() < RACE_PROBABILITY);
        let _serial = if unlucky { None } else { Some(self.lucky.lock().await) };
        let found: Option<i64> = sqlx::query_scalar("SELECT id FROM users WHERE clerk_user_id = $1").bind(&user.id).fetch_optional(&self.pool).await?;
        if found.is_some() {
            return Ok(());
        }
        if unlucky {
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
        user.bind(sqlx::query("INSERT INTO users (clerk_user_id, email, first_name, last_name, clerk_updated_at) VALUES ($1, $2, $3, $4, $5)"))
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

fn problem(status: StatusCode, reason: &str, detail: &str) -> Response {
    (status, axum::Json(json!({"detail": detail, "reason": reason}))).into_response()
}

fn unavailable(reason: &str, detail: &str) -> Response {
    let mut response = problem(StatusCode::SERVICE_UNAVAILABLE, reason, detail);
    response.headers_mut().insert("retry-after", axum::http::HeaderValue::from_static("2"));
    response
}

/// What `GET /v1/users/{id}` gave.
enum Fetched {
    User(Value),
    NotFound,
    Unavailable(String),
}

impl Stubbed {
    async fn fetch_user(&self, id: &str) -> Fetched {
        let url = format!("{}/v1/users/{id}", self.settings.api_url);
        // `None`: no timeout of its own (a day stands for "forever").
        let timeout = self.behaviour.backend_api_timeout.unwrap_or(Duration::from_secs(86_400));
        match self.http.get(&url).bearer_auth(&self.settings.secret_key).timeout(timeout).send().await {
            Ok(r) if r.status().is_success() => r.json().await.map_or_else(|e| Fetched::Unavailable(format!("{url}: {e}")), Fetched::User),
            Ok(r) if r.status() == StatusCode::NOT_FOUND => Fetched::NotFound,
            Ok(r) => Fetched::Unavailable(format!("{url} answered {}", r.status())),
            Err(e) => Fetched::Unavailable(format!("{url}: {}", crate::error_chain(&e))),
        }
    }
}

/// `GET /api/sync`: verify the token, fetch the user from the Backend API, upsert the row.
pub(crate) async fn sync(State(state): State<Arc<Stubbed>>, headers: HeaderMap) -> Response {
    // One worker ([`crate::Behaviour::single_worker`]): the health path waits behind this request.
    let _worker = if state.behaviour.single_worker { Some(state.worker.lock().await) } else { None };
    // With Behaviour::session_cookie the sync path keeps a session too (django-clerk-users'
    // ClerkAuthMiddleware does, for every route): a known cookie is answered without the token.
    let response = match crate::routes::by_session_cookie(&state, &headers) {
        Some(by_session) => by_session,
        None => {
            let response = sync_inner(&state, &headers).await;
            if state.behaviour.session_cookie && response.status().is_success() {
                crate::routes::with_session_cookie(&state, response)
            } else {
                response
            }
        }
    };
    state.log(&format!("INFO GET {} -> {}", crate::SYNC_PATH, response.status().as_u16()));
    response
}

async fn sync_inner(state: &Stubbed, headers: &HeaderMap) -> Response {
    let Some(db) = state.db.as_ref() else { return problem(StatusCode::INTERNAL_SERVER_ERROR, "no-database", "DATABASE_URL is not set") };
    let Some(token) = headers.get("authorization").and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer ")) else {
        return state.refuse("token-missing", "no Authorization: Bearer header", true);
    };
    let claims = match state.verify(token.trim()).await {
        Ok(claims) => claims,
        Err((reason, detail)) => return state.refuse(reason, &detail, false),
    };
    let sub = claims["sub"].as_str().unwrap_or_default().to_owned();
    let user = match state.fetch_user(&sub).await {
        Fetched::User(json) => json,
        Fetched::NotFound if state.behaviour.deleted_user_500 => {
            state.log(&format!("ERROR unhandled exception: GET /v1/users/{sub} answered 404"));
            return (StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error").into_response();
        }
        Fetched::NotFound => return state.refuse("user-deleted", "the Clerk user of this token no longer exists", false),
        Fetched::Unavailable(why) => {
            state.log(&format!("WARNING Backend API unavailable: {why}"));
            return unavailable("clerk-api-unavailable", "the Clerk Backend API is unavailable, retry later");
        }
    };
    let Some(user) = ClerkUser::from_json(&user) else { return unavailable("clerk-api-unavailable", "unexpected user object") };
    let written = if state.behaviour.sync_race { db.get_then_create(&user).await } else { db.upsert(&user, false).await };
    match written {
        Ok(()) => axum::Json(json!({"clerk_user_id": user.id, "email": user.email})).into_response(),
        Err(WriteError::EmailTaken(_)) => problem(StatusCode::CONFLICT, "user-email-conflict", "the email belongs to another account"),
        Err(WriteError::Race(text)) => {
            // The seeded defect: the loser's unique violation becomes an auth failure.
            state.log(&format!("WARNING authentication failed: {text}"));
            problem(StatusCode::UNAUTHORIZED, "authentication-failed", &text)
        }
        Err(WriteError::Database(text)) if state.behaviour.database_error_401 => {
            state.log(&format!("WARNING authentication failed: {text}"));
            problem(StatusCode::UNAUTHORIZED, "authentication-failed", &text)
        }
        Err(WriteError::Database(text)) => {
            state.log(&format!("ERROR database unavailable: {text}"));
            unavailable("database-unavailable", "the database is unavailable, retry later")
        }
    }
}

/// `POST /api/webhooks/clerk`: Svix-verified `user.created|updated|deleted`, each `svix-id`
/// applied once.
pub(crate) async fn webhook(State(state): State<Arc<Stubbed>>, headers: HeaderMap, body: Bytes) -> Response {
    let response = webhook_inner(&state, &headers, &body).await;
    state.log(&format!("INFO POST {} -> {}", crate::WEBHOOK_PATH, response.status().as_u16()));
    response
}

async fn webhook_inner(state: &Stubbed, headers: &HeaderMap, body: &[u8]) -> Response {
    let Some(db) = state.db.as_ref() else { return problem(StatusCode::INTERNAL_SERVER_ERROR, "no-database", "DATABASE_URL is not set") };
    let Some(secret) = state.settings.webhook_secret.as_deref() else {
        return problem(StatusCode::SERVICE_UNAVAILABLE, "webhook-secret-missing", "CLERK_WEBHOOK_SECRET is not set: deliveries are refused");
    };
    let verified = svix::webhooks::Webhook::new(secret).and_then(|w| w.verify(body, headers));
    if let Err(e) = verified {
        return problem(StatusCode::BAD_REQUEST, "webhook-invalid-signature", &e.to_string());
    }
    let Ok(event) = serde_json::from_slice::<Value>(body) else { return problem(StatusCode::BAD_REQUEST, "webhook-invalid-payload", "not JSON") };
    let svix_id = headers.get("svix-id").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    match apply(state, db, &svix_id, &event).await {
        Ok(status) => axum::Json(json!({"status": status})).into_response(),
        Err(WriteError::EmailTaken(text)) | Err(WriteError::Race(text)) | Err(WriteError::Database(text)) if state.behaviour.poison_500 => {
            state.log(&format!("ERROR unhandled exception in the webhook: {text}"));
            (StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error").into_response()
        }
        Err(WriteError::EmailTaken(text)) => {
            // It can never apply: acknowledge it (a non-2xx is retried for a day), say why.
            state.log(&format!("ERROR webhook {svix_id} skipped, it can never apply: {text}"));
            let _ = sqlx::query("INSERT INTO webhook_events (svix_id) VALUES ($1) ON CONFLICT DO NOTHING").bind(&svix_id).execute(&db.pool).await;
            axum::Json(json!({"status": "skipped", "reason": "the email belongs to another account"})).into_response()
        }
        Err(WriteError::Race(text) | WriteError::Database(text)) => {
            state.log(&format!("ERROR webhook {svix_id}: {text}"));
            unavailable("database-unavailable", "retry later")
        }
    }
}

async fn apply(state: &Stubbed, db: &Db, svix_id: &str, event: &Value) -> Result<&'static str, WriteError> {
    let seen: Option<String> = sqlx::query_scalar("SELECT svix_id FROM webhook_events WHERE svix_id = $1").bind(svix_id).fetch_optional(&db.pool).await?;
    if seen.is_some() {
        return Ok("duplicate");
    }
    let status = match event["type"].as_str().unwrap_or_default() {
        "user.created" | "user.updated" => {
            let Some(user) = ClerkUser::from_json(&event["data"]) else { return Ok("ignored") };
            db.upsert(&user, state.behaviour.webhook_ignores_updated_at).await?;
            "applied"
        }
        "user.deleted" => {
            let id = event["data"]["id"].as_str().unwrap_or_default();
            let done = sqlx::query("UPDATE users SET deleted = true WHERE clerk_user_id = $1").bind(id).execute(&db.pool).await?;
            match (done.rows_affected(), state.behaviour.poison_500) {
                (0, true) => return Err(WriteError::Database(format!("User matching query does not exist (clerk_user_id={id})"))),
                (0, false) => "ignored: unknown user",
                _ => "applied",
            }
        }
        _ => "ignored",
    };
    sqlx::query("INSERT INTO webhook_events (svix_id) VALUES ($1) ON CONFLICT DO NOTHING").bind(svix_id).execute(&db.pool).await?;
    Ok(status)
}
