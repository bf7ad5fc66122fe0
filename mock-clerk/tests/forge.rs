//! Each forged token fails verification for its intended reason — and no other.

mod common;

use common::{fetch_jwks, verify, Options};
use mock_clerk::{Clock, ForgedToken, MockClerk, NewUser};
use rstest::rstest;

const NOW: i64 = 1_760_000_000;

#[derive(Debug, Clone, Copy)]
enum Forgery {
    Genuine,
    ExpiredBy(i64),
    NotBeforeIn(i64),
    IssuedInTheFuture(i64),
    AlgNone,
    Hs256WithPublicPem,
    UnknownKid,
    ForeignInstance,
    ForeignKeyUnderOurKid,
    TamperedSub,
    MissingSub,
    Audience(&'static str),
    AuthorizedParty(&'static str),
    V1,
    TypNotJwt,
}

fn forge(t: ForgedToken, mock: &MockClerk, other: &MockClerk, how: Forgery) -> ForgedToken {
    match how {
        Forgery::Genuine => t,
        Forgery::ExpiredBy(s) => t.expired_by(s),
        Forgery::NotBeforeIn(s) => t.not_before_in(s),
        Forgery::IssuedInTheFuture(s) => t.iat_offset(s).nbf_offset(-10),
        Forgery::AlgNone => t.alg_none(),
        Forgery::Hs256WithPublicPem => t.hs256_with_public_key(mock.instance()),
        Forgery::UnknownKid => t.unknown_kid(),
        Forgery::ForeignInstance => t.signed_by(other.instance()).claim("iss", other.instance().issuer()),
        Forgery::ForeignKeyUnderOurKid => t.signed_by_key_of(other.instance()),
        Forgery::TamperedSub => t.tampered("sub", "user_someone_else"),
        Forgery::MissingSub => t.without_claim("sub"),
        Forgery::Audience(aud) => t.claim("aud", aud),
        Forgery::AuthorizedParty(azp) => t.claim("azp", azp),
        Forgery::V1 => t.v1(),
        Forgery::TypNotJwt => t.header("typ", "at+jwt"),
    }
}

fn audience(aud: &str) -> Options {
    Options { audience: Some(aud.into()), ..Options::sdk_defaults() }
}

fn parties(azp: &str) -> Options {
    Options { authorized_parties: vec![azp.into()], ..Options::sdk_defaults() }
}

#[rstest]
#[case::genuine(Forgery::Genuine, Options::sdk_defaults(), Ok(()))]
#[case::expired_beyond_skew(Forgery::ExpiredBy(6), Options::sdk_defaults(), Err("token-expired"))]
#[case::expired_within_skew(Forgery::ExpiredBy(3), Options::sdk_defaults(), Ok(()))]
#[case::not_yet_valid(Forgery::NotBeforeIn(30), Options::sdk_defaults(), Err("token-not-active-yet"))]
#[case::issued_in_the_future(Forgery::IssuedInTheFuture(30), Options::sdk_defaults(), Err("token-iat-in-the-future"))]
#[case::alg_none(Forgery::AlgNone, Options::sdk_defaults(), Err("token-invalid-algorithm"))]
#[case::hs256_keyed_with_the_public_pem(Forgery::Hs256WithPublicPem, Options::sdk_defaults(), Err("token-invalid-algorithm"))]
#[case::unknown_kid(Forgery::UnknownKid, Options::sdk_defaults(), Err("jwk-kid-mismatch"))]
#[case::foreign_instance(Forgery::ForeignInstance, Options::sdk_defaults(), Err("jwk-kid-mismatch"))]
#[case::foreign_key_under_our_kid(Forgery::ForeignKeyUnderOurKid, Options::sdk_defaults(), Err("token-invalid-signature"))]
#[case::payload_tampered_after_signing(Forgery::TamperedSub, Options::sdk_defaults(), Err("token-invalid-signature"))]
#[case::missing_sub(Forgery::MissingSub, Options::sdk_defaults(), Err("token-invalid-sub"))]
#[case::wrong_audience(Forgery::Audience("https://other.example"), audience("https://api.example"), Err("token-invalid-audience"))]
#[case::right_audience(Forgery::Audience("https://api.example"), audience("https://api.example"), Ok(()))]
#[case::wrong_azp(Forgery::AuthorizedParty("https://evil.example"), parties("http://localhost:3000"), Err("token-invalid-authorized-parties"))]
#[case::v1_claims(Forgery::V1, Options::sdk_defaults(), Ok(()))]
#[case::typ_not_jwt(Forgery::TypNotJwt, Options::sdk_defaults(), Err("token-invalid"))]
#[tokio::test]
async fn a_forged_token_fails_for_its_intended_reason_only(#[case] how: Forgery, #[case] options: Options, #[case] expected: Result<(), &'static str>) {
    let clock = Clock::fixed_at_unix(NOW);
    let mock = MockClerk::builder().clock(clock.clone()).start().await.expect("mock");
    let other = MockClerk::builder().clock(clock).start().await.expect("other instance");
    let user = mock.create_user(NewUser::with_email("f@example.com")).expect("user");
    let session = mock.create_session(&user.id).expect("session");
    let token = forge(mock.forge_session_token(&session.id).expect("forge"), &mock, &other, how).build().expect("build");
    let jwks = fetch_jwks(&mock.jwks_url()).await;
    assert_eq!(verify(&token, &jwks, &options, NOW).map(|_| ()), expected);
}

#[tokio::test]
async fn a_session_id_is_not_a_token() {
    let mock = MockClerk::start().await.expect("mock");
    let user = mock.create_user(NewUser::with_email("s@example.com")).expect("user");
    let session = mock.create_session(&user.id).expect("session");
    assert!(session.id.starts_with("sess_"));
    let jwks = fetch_jwks(&mock.jwks_url()).await;
    assert_eq!(verify(&session.id, &jwks, &Options::sdk_defaults(), mock.clock().now_unix()).map(|_| ()), Err("token-invalid"));
}

#[tokio::test]
async fn a_token_expires_when_the_clock_moves_without_sleeping() {
    let mock = MockClerk::builder().clock(Clock::fixed_at_unix(NOW)).start().await.expect("mock");
    let user = mock.create_user(NewUser::with_email("c@example.com")).expect("user");
    let session = mock.create_session(&user.id).expect("session");
    let token = mock.session_token(&session.id, None).expect("token");
    let jwks = fetch_jwks(&mock.jwks_url()).await;
    mock.clock().advance(std::time::Duration::from_secs(64));
    assert!(verify(&token, &jwks, &Options::sdk_defaults(), mock.clock().now_unix()).is_ok(), "within the 5 s skew");
    mock.clock().advance(std::time::Duration::from_secs(2));
    assert_eq!(verify(&token, &jwks, &Options::sdk_defaults(), mock.clock().now_unix()).map(|_| ()), Err("token-expired"));
}
