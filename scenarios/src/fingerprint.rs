//! The backend's auth fingerprint: what it measurably does with time claims, keys, cached
//! tokens, its own session and Backend API failures — measured once per run, shown at the top
//! of every report with the measurement behind each figure, and used by the scenarios to name
//! one root cause ([`Cause`]) instead of guessing one per scenario.
//!
//! The leeways are searched before the first scenario: fresh tokens whose `exp` lies `d`
//! seconds in the past (or `nbf`/`iat` `d` seconds ahead), `d` doubled until refused, then
//! bisected to the second — never a single probe at a common default such as 60 s — sent
//! without the backend's cookies so a session of its own cannot answer for the token. The
//! other figures are measured by the scenario that owns them (`tokens.key_rotation` moves the
//! backend's clock to time a JWKS refetch, `tokens.cache_outlives_exp` a validation cache,
//! `tokens.backend_session_outlives_clerk` a session cookie, `sync.backend_api_failure` the
//! Backend API retries) and recorded here.

use harness::GetToken;
use serde::Serialize;

use crate::ctx::Ctx;
use crate::stack::{Knob, Stack};
use crate::StepError;

/// The largest offset the leeway search tries: ten years. Accepted there: the claim is not
/// checked at all.
pub const UNCHECKED_AT: u64 = 10 * 365 * 24 * 3600;

/// The leeway a backend allows on one time claim, as measured.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Leeway {
    /// Accepted `accepted` seconds past the claim (0: not even 1 s), refused from `refused`.
    Bounded {
        /// The largest offset accepted.
        accepted: u64,
        /// The smallest offset refused.
        refused: u64,
    },
    /// Accepted even ten years (`UNCHECKED_AT`) past the claim: not checked.
    Unchecked,
    /// Could not be measured, and why.
    Unmeasured {
        /// Why.
        why: String,
    },
}

impl Leeway {
    /// Whether a token `offset` seconds past the claim is accepted, by this measurement.
    #[must_use]
    pub fn covers(&self, offset: u64) -> bool {
        match self {
            Self::Bounded { accepted, .. } => offset <= *accepted,
            Self::Unchecked => true,
            Self::Unmeasured { .. } => false,
        }
    }

    /// Whether a token `offset` seconds past the claim is refused, by this measurement.
    #[must_use]
    pub fn refuses(&self, offset: u64) -> bool {
        matches!(self, Self::Bounded { refused, .. } if offset >= *refused)
    }

    /// The leeway in whole seconds, as a reader would name it: of the two seconds the
    /// boundary lies between, the round one (PyJWT's 5 s reads "accepted 4, refused 5",
    /// `jsonwebtoken`'s 60 s "accepted 60, refused 61": whether the boundary second passes
    /// depends on the library's `<` or `<=` and on the fraction of the current second).
    #[must_use]
    pub fn approx(&self) -> Option<u64> {
        match self {
            Self::Bounded { accepted, refused } if refused - accepted == 1 && refused % 5 == 0 => Some(*refused),
            Self::Bounded { accepted, .. } => Some(*accepted),
            _ => None,
        }
    }

    /// `≈60 s (accepted 60 s past exp, refused 61 s past)`.
    #[must_use]
    pub fn describe(&self, claim: Claim) -> String {
        let past = claim.past();
        match self {
            Self::Bounded { accepted: 0, refused } => format!("≈0 s (refused {refused} s {past} already)"),
            Self::Bounded { accepted, refused } => {
                format!("≈{} s (accepted {accepted} s {past}, refused {refused} s {past})", self.approx().unwrap_or(*accepted))
            }
            Self::Unchecked => format!("not checked (accepted {} {past})", span(UNCHECKED_AT)),
            Self::Unmeasured { why } => format!("not measured: {why}"),
        }
    }
}

/// A time claim.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Claim {
    /// Expiry.
    Exp,
    /// Not before.
    Nbf,
    /// Issued at.
    Iat,
}

impl Claim {
    /// `exp`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Exp => "exp",
            Self::Nbf => "nbf",
            Self::Iat => "iat",
        }
    }

    fn past(self) -> &'static str {
        match self {
            Self::Exp => "past exp",
            Self::Nbf => "before nbf",
            Self::Iat => "ahead of iat",
        }
    }

    fn knob_when_unchecked(self) -> Knob {
        match self {
            Self::Exp => Knob::VerifyExp,
            Self::Nbf => Knob::VerifyNbf,
            Self::Iat => Knob::VerifyIat,
        }
    }
}

/// A figure a scenario measured, with how.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Fact {
    /// The figure, in a few words (`refetched after a cooldown of ≈30 s`).
    pub figure: String,
    /// How it was measured.
    pub measurement: String,
    /// The scenario that measured it.
    pub by: String,
}

/// One root cause: a measured property of the backend that explains one or more findings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Cause {
    /// Stable id; findings with the same id are one cause.
    pub id: String,
    /// The cause in one line (`the backend allows ≈60 s of clock leeway on exp`).
    pub title: String,
    /// The measurement behind it.
    pub measurement: String,
    /// The fix, in the backend's stack's terms.
    pub fix: String,
}

/// What the harness measured of the backend's auth behaviour.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Fingerprint {
    /// The backend's stack, for fixes in its terms.
    pub stack: Stack,
    /// The leeway on `exp` (`None`: not measured in this run).
    pub exp: Option<Leeway>,
    /// The leeway on `nbf`.
    pub nbf: Option<Leeway>,
    /// The leeway on `iat` in the future.
    pub iat: Option<Leeway>,
    /// Requests the leeway search sent.
    pub leeway_probes: usize,
    /// The JWKS cache: when a rotated key is first accepted, fetches seen.
    pub jwks: Option<Fact>,
    /// A cache of validated tokens and its lifetime past `exp`.
    pub token_cache: Option<Fact>,
    /// The backend's own session cookie.
    pub session: Option<Fact>,
    /// Backend API failure handling: answer time and retries.
    pub backend_api: Option<Fact>,
}

impl Fingerprint {
    /// The leeway measured on `claim`, if any.
    #[must_use]
    pub fn leeway(&self, claim: Claim) -> Option<&Leeway> {
        match claim {
            Claim::Exp => self.exp.as_ref(),
            Claim::Nbf => self.nbf.as_ref(),
            Claim::Iat => self.iat.as_ref(),
        }
    }

    /// The figures, each with its measurement, in report order: `(name, figure, measurement)`.
    #[must_use]
    pub fn rows(&self) -> Vec<(&'static str, String, String)> {
        let mut rows = vec![("stack", self.stack.describe(), "the profile's command, virtualenv and project files".to_string())];
        for claim in [Claim::Exp, Claim::Nbf, Claim::Iat] {
            if let Some(l) = self.leeway(claim) {
                rows.push((
                    claim.name(),
                    l.describe(claim),
                    format!(
                        "leeway search: fresh tokens {} by doubling then bisecting offsets, no cookies ({} probes in all)",
                        claim.past(),
                        self.leeway_probes
                    ),
                ));
            }
        }
        for (name, fact) in [("jwks", &self.jwks), ("token cache", &self.token_cache), ("session", &self.session), ("backend api", &self.backend_api)] {
            if let Some(f) = fact {
                rows.push((name, f.figure.clone(), format!("{} ({})", f.measurement, f.by)));
            }
        }
        rows
    }

    /// The cause that explains a token `offset` seconds past `claim` being ACCEPTED, when the
    /// measured leeway covers it.
    #[must_use]
    pub fn accepted_cause(&self, claim: Claim, offset: u64) -> Option<Cause> {
        let leeway = self.leeway(claim)?;
        if !leeway.covers(offset) {
            return None;
        }
        Some(self.leeway_cause(claim, leeway))
    }

    /// The cause that explains a token `offset` seconds past `claim` being REFUSED although
    /// Clerk's SDKs accept it (their 5 s of skew), when the measured leeway refuses it.
    #[must_use]
    pub fn refused_cause(&self, claim: Claim, offset: u64) -> Option<Cause> {
        let leeway = self.leeway(claim)?;
        leeway.refuses(offset).then(|| self.leeway_cause(claim, leeway))
    }

    fn leeway_cause(&self, claim: Claim, leeway: &Leeway) -> Cause {
        if *leeway == Leeway::Unchecked {
            return Cause {
                id: format!("{}-unchecked", claim.name()),
                title: format!("the backend does not check {}", claim.name()),
                measurement: format!("{}: {}", claim.name(), leeway.describe(claim)),
                fix: crate::stack::fix(claim.knob_when_unchecked(), &self.stack),
            };
        }
        // One leeway setting usually covers every claim it applies to: name them together. A
        // boundary read a second apart on two claims (the fraction of the current second, a
        // `<` against a `<=`) is the same setting.
        let own = leeway.approx().unwrap_or(0);
        let same: Vec<Claim> = [Claim::Exp, Claim::Nbf, Claim::Iat]
            .into_iter()
            .filter(|c| self.leeway(*c).and_then(Leeway::approx).is_some_and(|a| a.abs_diff(own) <= 1))
            .collect();
        let approx = same.iter().filter_map(|c| self.leeway(*c).and_then(Leeway::approx)).min().unwrap_or(own);
        let names: Vec<&str> = same.iter().map(|c| c.name()).collect();
        let measurement = same.iter().filter_map(|c| self.leeway(*c).map(|l| format!("{}: {}", c.name(), l.describe(*c)))).collect::<Vec<_>>().join("; ");
        Cause {
            id: format!("leeway-{approx}s"),
            title: format!("the backend allows ≈{approx} s of clock leeway on {} (Clerk's SDKs: 5 s)", names.join(", ")),
            measurement,
            fix: crate::stack::fix(Knob::Leeway, &self.stack),
        }
    }
}

/// `10 years`, `2 h`, `5 min`, `30 s`.
#[must_use]
pub fn span(secs: u64) -> String {
    match secs {
        s if s >= 365 * 24 * 3600 => format!("{} years", s / (365 * 24 * 3600)),
        s if s >= 3600 && s % 3600 == 0 => format!("{} h", s / 3600),
        s if s >= 60 && s % 60 == 0 => format!("{} min", s / 60),
        s => format!("{s} s"),
    }
}

/// Searches the leeway on each time claim, into a fingerprint of `stack`: the figures that
/// are measured before the first scenario. A backend that refuses even a fresh valid
/// token gets "not measured" (its scenarios say why).
///
/// # Errors
/// A request did not complete, or the mock refused a step.
pub async fn measure(ctx: &mut Ctx, stack: Stack) -> Result<Fingerprint, StepError> {
    let mut fp = Fingerprint { stack, ..Fingerprint::default() };
    let me = ctx.sign_in("fingerprint")?;
    let endpoint = ctx.token_endpoint()?;
    let want = *endpoint.status.get();
    let fresh = ctx.env.spa().get_token(&me.session.id, &GetToken::ProfileDefault)?;
    let got = ctx.call_without_cookies(&endpoint, &fresh).await?;
    fp.leeway_probes += 1;
    if got.status != want && !(200..300).contains(&got.status) {
        let why = format!("a fresh valid token was refused ({})", got.status);
        for claim in [Claim::Exp, Claim::Nbf, Claim::Iat] {
            fp.set(claim, Leeway::Unmeasured { why: why.clone() });
        }
        return Ok(fp);
    }
    for claim in [Claim::Exp, Claim::Nbf, Claim::Iat] {
        let mut search = Search::default();
        while let Some(offset) = search.next() {
            let accepted = probe(ctx, &me.session.id, claim, offset).await?;
            fp.leeway_probes += 1;
            search.record(accepted);
        }
        fp.set(claim, search.result().unwrap_or(Leeway::Unmeasured { why: "the search did not end".into() }));
    }
    Ok(fp)
}

impl Fingerprint {
    /// Records the leeway measured on `claim`.
    pub(crate) fn set(&mut self, claim: Claim, leeway: Leeway) {
        match claim {
            Claim::Exp => self.exp = Some(leeway),
            Claim::Nbf => self.nbf = Some(leeway),
            Claim::Iat => self.iat = Some(leeway),
        }
    }
}

/// Sends a fresh token `offset` seconds past `claim`, without cookies: accepted?
async fn probe(ctx: &mut Ctx, session_id: &str, claim: Claim, offset: u64) -> Result<bool, StepError> {
    let d = i64::try_from(offset).unwrap_or(i64::MAX / 4);
    let token = crate::ctx::forge(ctx, session_id)?;
    let token = match claim {
        Claim::Exp => token.expired_by(d),
        // nbf ahead; exp after it, so the token is consistent.
        Claim::Nbf => token.not_before_in(d).exp_offset(d + 60),
        // iat ahead (exp moves with it), nbf valid.
        Claim::Iat => token.iat_offset(d).nbf_offset(-10),
    }
    .build()?;
    let endpoint = ctx.token_endpoint()?;
    let got = ctx.call_without_cookies(&endpoint, &token).await?;
    Ok(got.status == *endpoint.status.get() || (200..300).contains(&got.status))
}

/// The search, one probe at a time: [`UNCHECKED_AT`] first (accepted: unchecked), then
/// 1 s, then doubling until refused, then bisecting to the second. [`Search::next`] says
/// which offset to probe, [`Search::record`] takes the answer.
#[derive(Debug, Clone)]
pub struct Search {
    state: SearchState,
}

#[derive(Debug, Clone)]
enum SearchState {
    Unchecked,
    One,
    Doubling { lo: u64, hi: u64 },
    Bisecting { lo: u64, hi: u64 },
    Done(Leeway),
}

impl Default for Search {
    fn default() -> Self {
        Self { state: SearchState::Unchecked }
    }
}

impl Search {
    /// The offset to probe next, or `None` when the leeway is known ([`Search::result`]).
    #[must_use]
    pub fn next(&self) -> Option<u64> {
        match &self.state {
            SearchState::Unchecked => Some(UNCHECKED_AT),
            SearchState::One => Some(1),
            SearchState::Doubling { hi, .. } => Some(*hi),
            SearchState::Bisecting { lo, hi } => Some(lo + (hi - lo) / 2),
            SearchState::Done(_) => None,
        }
    }

    /// Whether the probe at [`Search::next`] was accepted.
    pub fn record(&mut self, accepted: bool) {
        let Some(d) = self.next() else { return };
        self.state = match (&self.state, accepted) {
            (SearchState::Unchecked, true) => SearchState::Done(Leeway::Unchecked),
            (SearchState::Unchecked, false) => SearchState::One,
            (SearchState::One, false) => SearchState::Done(Leeway::Bounded { accepted: 0, refused: 1 }),
            (SearchState::One, true) => SearchState::Doubling { lo: 1, hi: 2 },
            (SearchState::Doubling { .. }, true) if d * 2 >= UNCHECKED_AT => SearchState::Done(Leeway::Bounded { accepted: d, refused: UNCHECKED_AT }),
            (SearchState::Doubling { .. }, true) => SearchState::Doubling { lo: d, hi: d * 2 },
            (SearchState::Doubling { lo, .. } | SearchState::Bisecting { lo, .. }, false) => Self::narrowed(*lo, d),
            (SearchState::Bisecting { hi, .. }, true) => Self::narrowed(d, *hi),
            (SearchState::Done(l), _) => SearchState::Done(l.clone()),
        };
    }

    fn narrowed(lo: u64, hi: u64) -> SearchState {
        if hi - lo <= 1 {
            SearchState::Done(Leeway::Bounded { accepted: lo, refused: hi })
        } else {
            SearchState::Bisecting { lo, hi }
        }
    }

    /// The leeway, once [`Search::next`] is `None`.
    #[must_use]
    pub fn result(&self) -> Option<Leeway> {
        match &self.state {
            SearchState::Done(l) => Some(l.clone()),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn searched(leeway: u64) -> (Leeway, usize) {
        let mut search = Search::default();
        let mut probes = 0;
        while let Some(d) = search.next() {
            probes += 1;
            search.record(d <= leeway);
        }
        (search.result().expect("done"), probes)
    }

    #[test]
    fn the_search_finds_the_boundary_to_the_second() {
        assert_eq!(searched(60).0, Leeway::Bounded { accepted: 60, refused: 61 });
        assert_eq!(searched(0).0, Leeway::Bounded { accepted: 0, refused: 1 });
        assert_eq!(searched(1).0, Leeway::Bounded { accepted: 1, refused: 2 });
        assert_eq!(searched(4).0, Leeway::Bounded { accepted: 4, refused: 5 });
        assert_eq!(searched(299).0, Leeway::Bounded { accepted: 299, refused: 300 });
        assert_eq!(searched(UNCHECKED_AT).0, Leeway::Unchecked);
        let (_, probes) = searched(3600);
        assert!(probes <= 26, "{probes} probes for a 1 h leeway");
    }

    #[test]
    fn the_approximation_picks_the_round_second() {
        assert_eq!(Leeway::Bounded { accepted: 60, refused: 61 }.approx(), Some(60));
        assert_eq!(Leeway::Bounded { accepted: 4, refused: 5 }.approx(), Some(5));
        assert_eq!(Leeway::Bounded { accepted: 0, refused: 1 }.approx(), Some(0));
        assert!(Leeway::Bounded { accepted: 60, refused: 61 }.covers(30));
        assert!(!Leeway::Bounded { accepted: 60, refused: 61 }.covers(61));
        assert!(Leeway::Bounded { accepted: 0, refused: 1 }.refuses(2));
    }

    #[test]
    fn one_leeway_on_several_claims_is_one_cause() {
        let l = Leeway::Bounded { accepted: 60, refused: 61 };
        let fp = Fingerprint { exp: Some(l.clone()), nbf: Some(l.clone()), iat: Some(Leeway::Unchecked), ..Fingerprint::default() };
        let exp = fp.accepted_cause(Claim::Exp, 30).expect("covers 30 s");
        let nbf = fp.accepted_cause(Claim::Nbf, 60).expect("covers 60 s");
        assert_eq!(exp, nbf);
        assert!(exp.title.contains("≈60 s") && exp.title.contains("exp, nbf"), "{}", exp.title);
        let iat = fp.accepted_cause(Claim::Iat, 60).expect("unchecked");
        // A second apart (the fraction of the current second) is the same setting.
        let jitter = Fingerprint {
            exp: Some(Leeway::Bounded { accepted: 0, refused: 1 }),
            iat: Some(Leeway::Bounded { accepted: 1, refused: 2 }),
            ..Fingerprint::default()
        };
        assert_eq!(jitter.refused_cause(Claim::Exp, 2).map(|c| c.id), jitter.refused_cause(Claim::Iat, 3).map(|c| c.id));
        assert_eq!(iat.id, "iat-unchecked");
        assert!(fp.accepted_cause(Claim::Exp, 61).is_none());
    }
}
