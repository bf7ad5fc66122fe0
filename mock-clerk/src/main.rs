//! `mock-clerk`: the mock as a standalone server for any language's tests.

use std::net::IpAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use mock_clerk::Config;
use mock_clerk::{KeySource, MockClerk};
use serde_json::json;

/// An offline, faithful mock of Clerk: JWKS, session and JWT-template tokens, Backend API,
/// forged tokens, faults and a movable clock.
///
/// When ready, `serve` prints ONE JSON line on stdout with everything a test needs:
/// fapi_url, api_url, fapi_host, issuer, jwks_url, publishable_key, secret_key,
/// webhook_secret, pem_public_key, instance_id, users, sessions.
///
/// Admin API (Backend API listener, `Authorization: Bearer <secret_key>`):
///   GET  /_mock/info                       instance details
///   POST /_mock/users     {email_addresses, first_name, last_name, phone_numbers, external_id, …}
///   POST /_mock/sessions  {user_id, status?, organization?}
///   POST /_mock/templates {name, claims, lifetime?, allowed_clock_skew?, signing?}
///   POST /_mock/tokens    {session_id, template?, origin?, version?: "v1"|"v2", session_id_instead?,
///                          forge?: {expired_by, exp_offset, nbf_offset, iat_offset, alg_none,
///                          hs256_with_public_key, unknown_kid, claims, remove_claims, headers,
///                          remove_headers, tampered: [claim, value], v1}}
///   POST /_mock/browser   {session_id, origin?}  a signed-in browser's cookies (__session, __client_uat,
///                          __clerk_db_jwt; plain and suffixed) and its dev browser / __client cookie
///   POST /_mock/rotate    {overlap_secs?}     new signing key (old kept for the overlap)
///   POST|GET|DELETE /_mock/faults  {route: {api, method, path}, action: {kind: status|rate_limited|latency|hang, …}, times?}
///   POST|GET /_mock/clock {advance_secs?, offset_secs?, freeze_at_unix?, reset?}
///   GET|DELETE /_mock/requests             the request record
///   POST|GET /_mock/webhooks/endpoints {url, secret?, events?}   DELETE /_mock/webhooks/endpoints/{id}
///   POST /_mock/webhooks/send  {type, data? | user_id? | session_id?}   POST /_mock/webhooks/redeliver {message_id}
///   POST /_mock/webhooks/forge {forgery, endpoint_id?, type, …}   GET|DELETE /_mock/webhooks/log
///   GET|POST /_mock/webhooks/settings {time_scale?, timeout_ms?, schedule_secs?}
#[derive(Parser)]
#[command(name = "mock-clerk", version, verbatim_doc_comment)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the Frontend and Backend API until interrupted.
    Serve(ServeArgs),
}

#[derive(clap::Args)]
struct ServeArgs {
    /// TOML config: instance, users, sessions, templates, bind address and ports.
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Listen address (overrides the config; default 127.0.0.1).
    #[arg(long)]
    bind: Option<IpAddr>,
    /// Frontend API port (0 = any free port).
    #[arg(long)]
    fapi_port: Option<u16>,
    /// Backend API port (0 = any free port).
    #[arg(long)]
    api_port: Option<u16>,
    /// Frontend API host, e.g. clerk.example.com (default random *.clerk.accounts.dev).
    #[arg(long)]
    fapi_host: Option<String>,
    /// Generate a fresh RSA key instead of using the built-in public test keys (~100 ms).
    #[arg(long)]
    fresh_keys: bool,
    /// Also start the TLS-intercepting proxy: clients with HTTPS_PROXY=<proxy_url> and
    /// SSL_CERT_FILE=<ca_file> reach this mock as https://api.clerk.com and https://<fapi host>
    /// (adds proxy_url, ca_file and env to the ready line).
    #[arg(long)]
    intercept: bool,
    /// Port of the interception proxy (0 = any free port); it listens on --bind.
    #[arg(long, default_value_t = 0)]
    proxy_port: u16,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("RUST_LOG").unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    let Command::Serve(args) = Cli::parse().command;
    serve(args).await
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let mut config = match &args.config {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    if let Some(host) = args.fapi_host {
        config.instance.fapi_host = Some(host);
    }
    if args.fresh_keys {
        config.instance.key_source = KeySource::Fresh;
    }
    let mut builder =
        MockClerk::builder().instance(config.instance).ports(args.fapi_port.unwrap_or(config.fapi_port), args.api_port.unwrap_or(config.api_port));
    if let Some(ip) = args.bind.or(config.bind) {
        builder = builder.bind_ip(ip);
    }
    for user in config.users {
        builder = builder.user(user);
    }
    for template in config.templates {
        builder = builder.template(template);
    }
    let mock = builder.start().await.context("mock-clerk could not start")?;
    for endpoint in config.webhook_endpoints {
        let url = endpoint.url.to_string();
        mock.webhooks().register(endpoint).with_context(|| format!("[[webhook_endpoints]] url = {url:?}"))?;
    }
    let mut sessions = vec![];
    for seed in config.sessions {
        let s = mock
            .store()
            .create_session_with(&seed.user_id, seed.status, None)
            .with_context(|| format!("[[sessions]] user_id = {:?} is not among [[users]]", seed.user_id))?;
        sessions.push(json!({ "id": s.id, "user_id": s.user_id, "status": s.status }));
    }
    let mut ready = mock.info();
    let users: Vec<_> = mock
        .store()
        .list_users(&Default::default(), mock_clerk::UserOrder::default(), None, 500, 0)
        .into_iter()
        .map(|u| json!({"id": u.id, "email": u.primary_email()}))
        .collect();
    let extra = json!({
        "fapi_url": mock.fapi_url(),
        "api_url": mock.api_url(),
        "jwks_url": mock.jwks_url(),
        "users": users,
        "sessions": sessions,
    });
    if let (Some(obj), Some(extra)) = (ready.as_object_mut(), extra.as_object()) {
        obj.extend(extra.clone());
    }
    let interceptor = if args.intercept {
        let bind = std::net::SocketAddr::new(mock.addrs().1.ip(), args.proxy_port);
        let proxy = mock_clerk::intercept::Interceptor::builder()
            .route("api.clerk.com", mock.bapi_router())
            .route(mock.instance().fapi_host(), mock.fapi_router())
            .bind(bind)
            .start()
            .await
            .context("the interception proxy could not start")?;
        if let Some(obj) = ready.as_object_mut() {
            obj.insert("proxy_url".into(), json!(proxy.proxy_url()));
            obj.insert("ca_file".into(), json!(proxy.ca_file().display().to_string()));
            let env: serde_json::Map<String, serde_json::Value> = proxy.env_block().iter().map(|(k, v)| (k.to_string(), json!(v))).collect();
            obj.insert("env".into(), serde_json::Value::Object(env));
        }
        Some(proxy)
    } else {
        None
    };
    println!("{ready}");
    shutdown_signal().await;
    drop(interceptor);
    mock.stop();
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! { _ = ctrl_c => {}, _ = term.recv() => {} }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
