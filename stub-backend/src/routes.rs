//! The stub's routes: health, the token endpoints, the organization-gated ones, preflights.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::cookies::{answer_cookie, query_param, Cookies};
use crate::{AccessLog, Stubbed, DJANGO_CSRF_PAGE, ITEMS_PATH, LEAKY_BODY, ME_PATH, ORG_PATH, ORG_PERMISSION_PATH};

pub(crate) async fn health(State(state): State<Arc<Stubbed>>, uri: axum::http::Uri) -> Response {
    if state.behaviour.access_log == AccessLog::Health {
        state.log(&format!("INFO GET {uri} "));
    }
    let _worker = if state.behaviour.single_worker { Some(state.worker.lock().await) } else { None };
    if let Some(name) = state.missing {
        state.log(&format!("ERROR configuration error: {name} is not set"));
        return (StatusCode::SERVICE_UNAVAILABLE, "misconfigured").into_response();
    }
    match &state.behaviour.health {
        None => "ok".into_response(),
        Some((status, body)) => {
            let status = StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            (status, [("content-type", "text/html")], body.clone()).into_response()
        }
    }
}

/// `GET|POST /api/me/`: the token endpoint's trailing-slash form.
pub(crate) async fn me_slash(State(state): State<Arc<Stubbed>>, method: Method, uri: axum::http::Uri, headers: HeaderMap) -> Response {
    if !state.behaviour.trailing_slash_redirect {
        return (StatusCode::NOT_FOUND, axum::Json(json!({"detail": "Not Found"}))).into_response();
    }
    let origin = headers.get("origin");
    let response = answer(&state, &method, &uri, &headers).await;
    state.log(&format!("INFO {method} {ME_PATH}/ -> {}", response.status().as_u16()));
    state.cors(origin, response)
}

/// `GET|POST /api/me` (and every preflight on it).
pub(crate) async fn me(State(state): State<Arc<Stubbed>>, method: Method, uri: axum::http::Uri, headers: HeaderMap) -> Response {
    let origin = headers.get("origin");
    if state.behaviour.trailing_slash_redirect {
        state.log(&format!("INFO {method} {ME_PATH} -> 301 {ME_PATH}/"));
        return (StatusCode::MOVED_PERMANENTLY, [("location", format!("{ME_PATH}/"))]).into_response();
    }
    if state.behaviour.csrf_page {
        state.log(&format!("WARNING Forbidden (CSRF cookie not set.): {ME_PATH}"));
        return state.cors(origin, (StatusCode::FORBIDDEN, [("content-type", "text/html; charset=utf-8")], DJANGO_CSRF_PAGE).into_response());
    }
    if let Some(hang) = state.behaviour.hang {
        state.log(&format!("INFO holding the request for {hang:?}"));
        tokio::time::sleep(hang).await;
    }
    let response = answer(&state, &method, &uri, &headers).await;
    state.log(&format!("INFO {method} {ME_PATH} -> {}", response.status().as_u16()));
    state.cors(origin, response)
}

async fn answer(state: &Stubbed, method: &Method, uri: &axum::http::Uri, headers: &HeaderMap) -> Response {
    if let Some(by_session) = by_session_cookie(state, headers) {
        return by_session;
    }
    let response = answer_token(state, method, uri, headers).await;
    if state.behaviour.session_cookie && response.status().is_success() {
        return with_session_cookie(state, response);
    }
    response
}

async fn answer_token(state: &Stubbed, method: &Method, uri: &axum::http::Uri, headers: &HeaderMap) -> Response {
    let Some(value) = headers.get("authorization").and_then(|v| v.to_str().ok()) else {
        let cookies = Cookies::parse(headers);
        let nonce = query_param(uri, mock_clerk::cookies::HANDSHAKE_NONCE).or_else(|| cookies.plain(mock_clerk::cookies::HANDSHAKE_NONCE));
        if cookies.clerk(state, mock_clerk::cookies::SESSION).is_some() || (state.behaviour.handshake && nonce.is_some()) {
            return answer_cookie(state, method, uri, headers, &cookies, nonce).await;
        }
        return state.refuse("token-missing", "no Authorization header", true);
    };
    let token = if state.behaviour.case_sensitive_bearer {
        value.strip_prefix("Bearer ")
    } else {
        value.split_once(' ').filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer")).map(|(_, t)| t)
    };
    let Some(token) = token.map(str::trim).filter(|t| !t.is_empty()) else {
        return state.refuse("token-invalid", "the Authorization header is not `Bearer <token>`", false);
    };
    if state.behaviour.crash_on_garbage && token.split('.').count() != 3 {
        state.log("ERROR unhandled exception: not enough segments");
        return (StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error").into_response();
    }
    // config slice
    if let Some(response) = state.config_slice_unconfigured() {
        return response;
    }
    match state.verify(token).await {
        Ok(claims) => axum::Json(json!({"sub": claims.get("sub"), "sid": claims.get("sid")})).into_response(),
        // config slice
        Err((reason, detail)) if reason == "secret-key-invalid" => state.config_slice_key_refused(reason, &detail),
        Err((reason, detail)) => state.refuse(reason, &detail, false),
    }
}

/// `GET /api/items`: the token endpoint's answer, or — [`Behaviour::items_crash`] — a 500
/// with a traceback to a valid user.
pub(crate) async fn items(State(state): State<Arc<Stubbed>>, method: Method, uri: axum::http::Uri, headers: HeaderMap) -> Response {
    let origin = headers.get("origin");
    let response = answer_token(&state, &method, &uri, &headers).await;
    let response = if state.behaviour.items_crash && response.status().is_success() {
        state.log(&format!("ERROR Exception in ASGI application\n{LEAKY_BODY}"));
        (StatusCode::INTERNAL_SERVER_ERROR, [("content-type", "text/plain")], format!("Internal Server Error\n{LEAKY_BODY}")).into_response()
    } else {
        response
    };
    state.log(&format!("INFO {method} {ITEMS_PATH} -> {}", response.status().as_u16()));
    state.cors(origin, response)
}

/// `GET /api/org/settings`: `org:admin` of the active organization, read from the v2 claims
/// (`o.rol` = `admin`), as `@clerk/backend` derives `orgRole`; 403 otherwise.
pub(crate) async fn org_settings(State(state): State<Arc<Stubbed>>, headers: HeaderMap) -> Response {
    let origin = headers.get("origin");
    let token = headers.get("authorization").and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer ")).unwrap_or_default();
    let response = match state.verify(token.trim()).await {
        Err((reason, detail)) => state.refuse(reason, &detail, token.is_empty()),
        Ok(claims) => {
            let (org, role) = if state.behaviour.org_claims_v1 {
                (claims.get("org_id").and_then(|v| v.as_str()).map(str::to_string), claims.get("org_role").and_then(|v| v.as_str()).map(str::to_string))
            } else {
                let o = claims.get("o");
                (
                    o.and_then(|o| o.get("id")).and_then(|v| v.as_str()).map(str::to_string),
                    o.and_then(|o| o.get("rol")).and_then(|v| v.as_str()).map(|r| format!("org:{r}")),
                )
            };
            let allowed = org.is_some() && (state.behaviour.org_role_ignored || role.as_deref() == Some("org:admin"));
            if allowed {
                axum::Json(json!({"org": org, "role": role})).into_response()
            } else {
                let why = if org.is_none() { "no active organization" } else { "org:admin required" };
                state.log(&format!("INFO refused: {why}"));
                let status = if state.behaviour.org_refusal_401 { StatusCode::UNAUTHORIZED } else { StatusCode::FORBIDDEN };
                (status, axum::Json(json!({"detail": why}))).into_response()
            }
        }
    };
    state.log(&format!("INFO GET {ORG_PATH} -> {}", response.status().as_u16()));
    state.cors(origin, response)
}

/// `GET /api/org/invoices`: `org:invoices:manage` in the active organization (v2 claims); 403
/// otherwise (401 with [`Behaviour::org_refusal_401`]).
pub(crate) async fn org_invoices(State(state): State<Arc<Stubbed>>, headers: HeaderMap) -> Response {
    let token = headers.get("authorization").and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer ")).unwrap_or_default();
    let response = match state.verify(token.trim()).await {
        Err((reason, detail)) => state.refuse(reason, &detail, token.is_empty()),
        Ok(claims) if claims.get("o").is_some() && v2_permissions(&claims).iter().any(|p| p == "org:invoices:manage") => {
            axum::Json(json!({"invoices": []})).into_response()
        }
        Ok(_) => {
            let status = if state.behaviour.org_refusal_401 { StatusCode::UNAUTHORIZED } else { StatusCode::FORBIDDEN };
            (status, axum::Json(json!({"detail": "org:invoices:manage required"}))).into_response()
        }
    };
    state.log(&format!("INFO GET {ORG_PERMISSION_PATH} -> {}", response.status().as_u16()));
    state.cors(headers.get("origin"), response)
}

/// `OPTIONS /api/me`: preflights need no token.
pub(crate) async fn preflight(State(state): State<Arc<Stubbed>>, headers: HeaderMap) -> Response {
    let origin = headers.get("origin").and_then(|v| v.to_str().ok()).unwrap_or_default();
    if !state.origin_allowed(origin) {
        return (StatusCode::BAD_REQUEST, "Disallowed CORS origin").into_response();
    }
    let mut response = StatusCode::OK.into_response();
    let h = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(origin) {
        h.insert("access-control-allow-origin", v);
    }
    h.insert("access-control-allow-credentials", HeaderValue::from_static("true"));
    h.insert("access-control-allow-methods", HeaderValue::from_static("GET, POST, PUT, PATCH, DELETE, OPTIONS"));
    h.insert("access-control-allow-headers", HeaderValue::from_static("authorization, content-type"));
    h.insert("access-control-max-age", HeaderValue::from_static("600"));
    h.insert("vary", HeaderValue::from_static("Origin"));
    response
}

/// The organization permissions a v2 session token grants (`org:<feature>:<permission>`):
/// feature `i` of the `o:`-scoped `fea` entries holds permission `j` of `o.per` when bit `j` of
/// `o.fpm[i]` is set (`@clerk/shared` `jwtPayloadParser`).
pub(crate) fn v2_permissions(claims: &serde_json::Value) -> Vec<String> {
    let split = |v: Option<&serde_json::Value>| -> Vec<String> {
        v.and_then(serde_json::Value::as_str).map(|s| s.split(',').filter(|x| !x.is_empty()).map(str::to_string).collect()).unwrap_or_default()
    };
    let features: Vec<String> = split(claims.get("fea")).into_iter().filter_map(|f| f.strip_prefix("o:").map(str::to_string)).collect();
    let o = claims.get("o");
    let names = split(o.and_then(|o| o.get("per")));
    let masks: Vec<u64> = split(o.and_then(|o| o.get("fpm"))).iter().map(|m| m.parse().unwrap_or(0)).collect();
    let mut granted = vec![];
    for (feature, mask) in features.iter().zip(masks) {
        for (j, name) in names.iter().enumerate().take(64) {
            if mask >> j & 1 == 1 {
                granted.push(format!("org:{feature}:{name}"));
            }
        }
    }
    granted
}

/// [`crate::Behaviour::session_cookie`]: the answer to a request whose `sessionid` cookie the
/// stub handed out — served without looking at its token.
pub(crate) fn by_session_cookie(state: &Stubbed, headers: &HeaderMap) -> Option<Response> {
    if !state.behaviour.session_cookie {
        return None;
    }
    let cookie = headers.get("cookie").and_then(|v| v.to_str().ok()).unwrap_or_default();
    let session = cookie.split(';').filter_map(|c| c.trim().strip_prefix("sessionid=")).next();
    if session.is_some_and(|s| state.sessions.lock().unwrap_or_else(std::sync::PoisonError::into_inner).contains(s)) {
        state.log("INFO authenticated by the sessionid cookie");
        return Some(axum::Json(json!({"via": "session cookie"})).into_response());
    }
    None
}

/// `response` (a success) with a new `sessionid` cookie that alone authenticates later requests.
pub(crate) fn with_session_cookie(state: &Stubbed, mut response: Response) -> Response {
    let id = format!("{:032x}", rand::random::<u128>());
    state.sessions.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(id.clone());
    if let Ok(v) = HeaderValue::from_str(&format!("sessionid={id}; Path=/; HttpOnly; SameSite=Lax; Max-Age=300")) {
        response.headers_mut().insert("set-cookie", v);
    }
    response
}
