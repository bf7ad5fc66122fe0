//! Serving the stub: its start from the environment, the connection loop, CORS and refusals.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderValue, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use harness::InProcessServer;
use harness::LogBuffer;
use harness::Stream;
use serde_json::json;
use tower::ServiceExt as _;

use crate::config_slice::{config_slice_client, config_slice_lets_start, config_slice_start, config_slice_webhook};
use crate::routes::{health, items, me, me_slash, org_invoices, org_settings, preflight};
use crate::{
    data, AccessLog, Behaviour, Jwks, Settings, Stubbed, CONFIG_WEBHOOK_PATH, ITEMS_PATH, LEAKY_BODY, LOGIN_PAGE_PATH, ME_PATH, MISSING_USER_PATH, ORG_PATH,
    ORG_PERMISSION_PATH, SYNC_PATH, WEBHOOK_PATH,
};

fn list(env: &BTreeMap<String, String>, name: &str) -> Vec<String> {
    env.get(name).map(|v| v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect()).unwrap_or_default()
}

pub(crate) async fn start(behaviour: Behaviour, clock: mock_clerk::Clock, env: &BTreeMap<String, String>, logs: LogBuffer) -> Result<InProcessServer, String> {
    let mut missing = None;
    config_slice_start(&behaviour, env)?;
    if !behaviour.start_without_keys {
        for name in ["CLERK_SECRET_KEY", "CLERK_JWKS_URL"].into_iter().filter(|n| !config_slice_lets_start(&behaviour, n)) {
            if env.get(name).is_none_or(String::is_empty) {
                if !behaviour.unhealthy_without_keys {
                    return Err(format!("stub-backend: configuration error: {name} is not set"));
                }
                missing.get_or_insert(name);
            }
        }
    }
    let settings = Settings {
        jwks_url: env.get("CLERK_JWKS_URL").cloned().unwrap_or_default(),
        issuer: env.get("CLERK_ISSUER").filter(|s| !s.is_empty()).cloned(),
        audience: list(env, "CLERK_AUDIENCE"),
        authorized_parties: list(env, "CLERK_AUTHORIZED_PARTIES"),
        cors_origins: list(env, "CORS_ORIGINS"),
        secret_key: env.get("CLERK_SECRET_KEY").cloned().unwrap_or_default(),
        api_url: env.get("CLERK_API_URL").cloned().unwrap_or_default(),
        fapi_host: env.get("CLERK_FAPI_HOST").cloned().unwrap_or_default(),
        cookie_suffix: env.get("CLERK_PUBLISHABLE_KEY").map(|pk| mock_clerk::cookies::cookie_suffix(pk)).unwrap_or_default(),
        development: env.get("CLERK_PUBLISHABLE_KEY").is_none_or(|pk| pk.starts_with("pk_test_")),
        // config slice
        webhook_secret: env.get("CLERK_WEBHOOK_SECRET").filter(|s| !s.is_empty()).cloned(),
    };
    let db = match env.get("DATABASE_URL").filter(|u| !u.is_empty()) {
        Some(url) => Some(data::Db::connect(url).await?),
        None => None,
    };
    let (access, access_lines) = tokio::sync::mpsc::unbounded_channel();
    // config slice
    let http = match config_slice_client(&behaviour, env)? {
        Some(client) => client,
        None => reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(5)).build().map_err(|e| format!("stub-backend: HTTP client: {e}"))?,
    };
    let state = Arc::new(Stubbed {
        behaviour,
        settings,
        jwks: tokio::sync::Mutex::new(Jwks::default()),
        http,
        logs,
        sessions: std::sync::Mutex::new(std::collections::HashSet::new()),
        missing,
        clock,
        validated: std::sync::Mutex::new(HashMap::new()),
        access,
        db,
        worker: tokio::sync::Mutex::new(()),
    });
    let router = Router::new()
        .route(SYNC_PATH, get(data::sync))
        .route(WEBHOOK_PATH, axum::routing::post(data::webhook))
        .route("/health", get(health))
        .route(ME_PATH, get(me).post(me).options(preflight))
        .route(&format!("{ME_PATH}/"), get(me_slash).post(me_slash).options(preflight))
        .route(ITEMS_PATH, get(items))
        .route(ORG_PATH, get(org_settings))
        .route(ORG_PERMISSION_PATH, get(org_invoices))
        .route(MISSING_USER_PATH, get(|| async { (StatusCode::NOT_FOUND, axum::Json(json!({"detail": "user not found"}))) }))
        .route(LOGIN_PAGE_PATH, get(|| async { axum::response::Redirect::to("/accounts/login/?next=/dashboard") }))
        // config slice
        .route(CONFIG_WEBHOOK_PATH, axum::routing::post(config_slice_webhook))
        .with_state(Arc::clone(&state));
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await.map_err(|e| format!("stub-backend: bind: {e}"))?;
    let addr = listener.local_addr().map_err(|e| format!("stub-backend: {e}"))?;
    let url = url::Url::parse(&format!("http://{addr}")).map_err(|e| format!("stub-backend: {e}"))?;
    state.log(&format!("INFO stub-backend listening on {url}"));
    let task = tokio::spawn(serve(listener, router, state, access_lines));
    Ok(InProcessServer::new(url, task))
}

/// Accepts connections until aborted; every connection task lives in the `JoinSet`, so
/// aborting this task stops them all.
async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    state: Arc<Stubbed>,
    mut access_lines: tokio::sync::mpsc::UnboundedReceiver<(tokio::time::Instant, String)>,
) {
    let mut connections = tokio::task::JoinSet::new();
    let logs = state.logs.clone();
    // One writer, in order: each line once its time has come.
    connections.spawn(async move {
        while let Some((due, line)) = access_lines.recv().await {
            tokio::time::sleep_until(due).await;
            logs.push(Stream::Stdout, &line);
        }
    });
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        while connections.try_join_next().is_some() {}
        let router = router.clone();
        let state = Arc::clone(&state);
        connections.spawn(async move {
            // Set once this connection answered 500 (with `close_after_500`).
            let poisoned = Arc::new(AtomicBool::new(false));
            let service = hyper::service::service_fn(move |request: Request<hyper::body::Incoming>| {
                let router = router.clone();
                let poisoned = Arc::clone(&poisoned);
                let close_after_500 = state.behaviour.close_after_500;
                let state = Arc::clone(&state);
                async move {
                    if poisoned.load(Ordering::SeqCst) {
                        state.log("INFO closing a connection that answered 500 (a new request arrived on it)");
                        return Err(std::io::Error::other("connection closed after a 500"));
                    }
                    let request_line = format!("{} {}", request.method(), request.uri());
                    let response = router.oneshot(request.map(Body::new)).await.unwrap_or_else(|never| match never {});
                    if let AccessLog::AfterAnswer(delay) = state.behaviour.access_log {
                        let line = format!("INFO 127.0.0.1 \"{request_line} HTTP/1.1\" {}", response.status().as_u16());
                        let _ = state.access.send((tokio::time::Instant::now() + delay, line));
                    }
                    if close_after_500 && response.status() == StatusCode::INTERNAL_SERVER_ERROR {
                        poisoned.store(true, Ordering::SeqCst);
                    }
                    Ok::<_, std::io::Error>(response)
                }
            });
            let io = hyper_util::rt::TokioIo::new(stream);
            let _ = hyper::server::conn::http1::Builder::new().keep_alive(true).serve_connection(io, service).await;
        });
    }
}

impl Stubbed {
    pub(crate) fn log(&self, line: &str) {
        self.logs.push(Stream::Stderr, line);
    }

    pub(crate) fn origin_allowed(&self, origin: &str) -> bool {
        self.behaviour.reflect_any_origin
            || self.settings.cors_origins.iter().any(|allowed| {
                allowed == origin
                    || allowed
                        .split_once("://*.")
                        .is_some_and(|(scheme, rest)| origin.strip_prefix(&format!("{scheme}://")).is_some_and(|host| host.ends_with(&format!(".{rest}"))))
            })
    }

    /// Adds CORS headers for `origin` (if allowed) to `response`.
    pub(crate) fn cors(&self, origin: Option<&HeaderValue>, mut response: Response) -> Response {
        let Some(origin) = origin else { return response };
        if !response.status().is_success() && self.behaviour.no_cors_on_errors {
            return response;
        }
        if self.origin_allowed(origin.to_str().unwrap_or_default()) {
            let headers = response.headers_mut();
            headers.insert("access-control-allow-origin", origin.clone());
            headers.insert("access-control-allow-credentials", HeaderValue::from_static("true"));
            headers.insert("vary", HeaderValue::from_static("Origin"));
        }
        response
    }

    pub(crate) fn refuse(&self, reason: &str, detail: &str, missing: bool) -> Response {
        if reason == "jwk-remote-failed-to-load" && !self.behaviour.jwks_failure_401 {
            self.log(&format!("ERROR 503: the JWKS cannot be loaded: {detail}"));
            let body = json!({"detail": "the signing keys cannot be loaded; retry later", "reason": reason}).to_string();
            return (StatusCode::SERVICE_UNAVAILABLE, [("content-type", "application/json"), ("retry-after", "5")], body).into_response();
        }
        let status = if self.behaviour.forbidden_instead_of_401 || (missing && self.behaviour.forbidden_on_missing_bearer) {
            StatusCode::FORBIDDEN
        } else {
            StatusCode::UNAUTHORIZED
        };
        if self.behaviour.quiet_refusals {
            self.log(&format!("INFO refused ({})", status.as_u16()));
        } else {
            self.log(&format!("INFO refused ({}): {reason}: {detail}", status.as_u16()));
        }
        let body = match (&self.behaviour.refusal_body, self.behaviour.empty_refusal_body) {
            _ if self.behaviour.leaky_refusals => format!("{{\"detail\": {}}}", json!(format!("{reason}: {detail}\n{LEAKY_BODY}"))),
            (_, true) => String::new(),
            (Some(body), false) => body.clone(),
            (None, false) => json!({"detail": detail, "reason": reason}).to_string(),
        };
        let mut response = (status, [("content-type", "application/json")], body).into_response();
        if status == StatusCode::UNAUTHORIZED && !self.behaviour.no_www_authenticate {
            let value = if missing { "Bearer".to_string() } else { format!("Bearer error=\"invalid_token\", error_description=\"{reason}\"") };
            if let Ok(value) = HeaderValue::from_str(&value) {
                response.headers_mut().insert("www-authenticate", value);
            }
        }
        response
    }
}
