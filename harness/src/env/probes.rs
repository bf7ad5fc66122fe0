//! The bring-up's probes: each profile endpoint called once without and once with a token
//! (a route the backend does not have is a profile mistake, reported once), and the TLS
//! trust of the per-run CA.

use std::time::SystemTime;

use mock_clerk::NewUser;

use super::TestEnv;
use crate::error::{HarnessError, Result};

/// What a bring-up probe of one endpoint found.
enum EndpointProbe {
    Fine,
    Mismatch(HarnessError),
}

impl TestEnv {
    /// After the bring-up probes: the backend's TLS client refused the per-run CA on a Clerk
    /// host and never got a request through — one error naming the fix, not a timeout or an
    /// `error` per scenario.
    pub(super) fn check_tls_trust(&self, since: SystemTime) -> Result<()> {
        let mut hosts = vec!["api.clerk.com".to_owned(), self.mock.instance().fapi_host().to_owned()];
        hosts.extend(self.routing.hosts().iter().cloned());
        let untrusted = crate::routing::untrusted_tls(&self.interceptor.handshake_failures(), &self.interceptor.routed_requests(), since, &hosts);
        if untrusted.is_empty() {
            return Ok(());
        }
        let evidence = untrusted
            .iter()
            .map(|(host, alert, after)| format!("the TLS handshake for {host} failed ({alert}, {after:.1} s into the bring-up)"))
            .collect::<Vec<_>>()
            .join("; ");
        Err(HarnessError::ClerkTlsUntrusted { evidence, fix: crate::routing::UNTRUSTED_CA_FIX.into() })
    }

    /// Calls each profile endpoint without a token and — unless it syncs the user — with a
    /// valid token of a new user (endpoints concurrently). A route the backend does not have
    /// — 404 (the same answer as for a path that surely does not exist) or 405 — or a redirect
    /// to a login page is a profile mistake, reported here once instead of as a failure of
    /// every scenario. Timeouts and other answers are left to the scenarios.
    pub(super) async fn probe_endpoints(&self) -> Result<()> {
        let client = reqwest::Client::builder().no_proxy().redirect(reqwest::redirect::Policy::none()).timeout(self.config.request_timeout()).build()?;
        let probes = self.profile.endpoints.iter().map(|endpoint| self.probe_endpoint(&client, endpoint));
        for probe in futures::future::join_all(probes).await {
            if let EndpointProbe::Mismatch(e) = probe? {
                return Err(e);
            }
        }
        Ok(())
    }

    async fn probe_endpoint(&self, client: &reqwest::Client, endpoint: &crate::profile::Endpoint) -> Result<EndpointProbe> {
        // Without a token first: a route that does not exist answers 404/405 before any auth.
        if let EndpointProbe::Mismatch(e) = self.probe_once(client, endpoint, None).await? {
            return Ok(EndpointProbe::Mismatch(e));
        }
        // Then with a valid token (behind an auth layer that answers 401 to every path, only
        // this reaches the router) — not for an endpoint that syncs the user: that call would
        // leave a user row in the fresh database before the first test.
        if endpoint.syncs_user {
            return Ok(EndpointProbe::Fine);
        }
        let tag = crate::identity::random_token(8).to_ascii_lowercase();
        let me = self.sign_in(NewUser::with_email(&format!("bringup-probe-{tag}@harness.test")).names("Probe", "Bringup"))?;
        let token = self.spa().get_token(&me.session.id, &crate::spa::GetToken::ProfileDefault)?;
        self.probe_once(client, endpoint, Some((&me.session.id, &token))).await
    }

    async fn probe_once(&self, client: &reqwest::Client, endpoint: &crate::profile::Endpoint, token: Option<(&str, &str)>) -> Result<EndpointProbe> {
        let tag = crate::identity::random_token(8).to_ascii_lowercase();
        let method = endpoint.method.as_reqwest();
        let base = self.backend_url.as_str().trim_end_matches('/');
        let send = |path: String| {
            let mut request = client.request(method.clone(), format!("{base}{path}"));
            if let Some((session_id, token)) = token {
                request = self.spa().authenticate(request, Some(session_id), token);
            }
            if let Ok(origin) = reqwest::header::HeaderValue::from_str(self.profile.spa_origin()) {
                request = request.header(reqwest::header::ORIGIN, origin);
            }
            request.send()
        };
        let path = endpoint.path.get();
        let response = match send(path.clone()).await {
            Ok(response) => response,
            Err(e) => {
                tracing::warn!(endpoint = %path, error = %e, "bring-up probe of the endpoint got no answer: left to the scenarios");
                return Ok(EndpointProbe::Fine);
            }
        };
        let status = response.status();
        let location = response.headers().get(reqwest::header::LOCATION).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        let body = response.text().await.unwrap_or_default();
        let mismatch = |answer: String, fix: String| {
            let to = if token.is_some() { "to a valid token" } else { "without a token" };
            EndpointProbe::Mismatch(HarnessError::EndpointMismatch {
                location: self.profile.location(&endpoint.path),
                method: method.as_str().into(),
                path: path.clone(),
                answer: format!("{answer} {to}"),
                fix: fix.into(),
            })
        };
        let login = ["login", "signin", "sign-in", "sign_in"];
        if status.is_redirection() && login.iter().any(|l| location.to_ascii_lowercase().contains(l)) {
            return Ok(mismatch(
                format!("{} with a redirect to {location}", status.as_u16()),
                "The route sends API calls to a login page (session or cookie auth, or a page route): point the profile's [[endpoints]] at the API route that takes `Authorization: Bearer`".into(),
            ));
        }
        if status == reqwest::StatusCode::METHOD_NOT_ALLOWED {
            return Ok(mismatch(
                "405 Method Not Allowed".into(),
                format!("The route {path} exists but not for {method}: fix the endpoint's `method` in the profile"),
            ));
        }
        if status == reqwest::StatusCode::NOT_FOUND {
            // The backend's own "not found" (e.g. no such user) differs from its router's.
            let nowhere = format!("/clerk-harness-no-such-route-{tag}");
            let unrouted = match send(nowhere.clone()).await {
                Ok(r) if r.status() == reqwest::StatusCode::NOT_FOUND => Some(r.text().await.unwrap_or_default()),
                _ => None,
            };
            if unrouted.is_some_and(|other| other.replace(&nowhere, "") == body.replace(path.as_str(), "")) {
                return Ok(mismatch(
                    format!("404 like a path that does not exist ({})", crate::text::excerpt_around(&crate::text::visible_text(&body), &[], 120)),
                    "Check the endpoint's path against the backend's routes (a prefix such as /api/v1, a trailing slash, or another app entry point than the one the profile starts)".into(),
                ));
            }
        }
        Ok(EndpointProbe::Fine)
    }
}
