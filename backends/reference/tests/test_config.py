"""Settings from the environment, fault names, URL conversion, origin patterns."""

from __future__ import annotations

import re

import pytest

from refbackend.config import FAULTS, REQUIRED_VARS, ConfigError, load_settings, publishable_key_host, sqlalchemy_url
from refbackend.cors import origin_rules

from .conftest import base_env

DB = "postgresql://u:p@127.0.0.1:5432/db"


@pytest.mark.parametrize("missing", REQUIRED_VARS)
def test_each_required_variable_is_named_when_missing(missing):
    env = base_env(DB)
    env[missing] = "  "
    with pytest.raises(ConfigError, match=missing):
        load_settings(env)


def test_all_missing_variables_are_named_together():
    with pytest.raises(ConfigError) as err:
        load_settings({})
    assert all(name in str(err.value) for name in REQUIRED_VARS)


def test_optional_variables_have_defaults():
    env = base_env(DB)
    del env["ENV"], env["CORS_ORIGINS"]
    s = load_settings(env)
    assert s.env == "development" and s.cors_origins == () and s.audience == () and s.authorized_parties == ()
    assert s.faults == frozenset()
    assert s.issuer == "https://able-hound-12.clerk.accounts.dev"
    assert s.jwks_url == "https://able-hound-12.clerk.accounts.dev/.well-known/jwks.json"


def test_lists_are_comma_separated():
    env = {**base_env(DB), "CLERK_AUDIENCE": "a, b", "CLERK_AUTHORIZED_PARTIES": "https://x.io,", "REFERENCE_FAULTS": " skip_issuer ,skip_audience"}
    s = load_settings(env)
    assert s.audience == ("a", "b") and s.authorized_parties == ("https://x.io",)
    assert s.faults == {"skip_issuer", "skip_audience"}


def test_unknown_fault_lists_the_valid_names():
    with pytest.raises(ConfigError) as err:
        load_settings({**base_env(DB), "REFERENCE_FAULTS": "skip_issuer,typo"})
    message = str(err.value)
    assert "typo" in message and all(name in message for name in FAULTS)


def test_start_without_keys_forgives_only_key_variables():
    env = {"DATABASE_URL": DB, "REFERENCE_FAULTS": "start_without_keys"}
    s = load_settings(env)
    assert s.secret_key == "" and s.domain == ""
    with pytest.raises(ConfigError, match="DATABASE_URL"):
        load_settings({"REFERENCE_FAULTS": "start_without_keys"})


def test_domain_must_be_a_bare_host():
    with pytest.raises(ConfigError, match="NEXT_PUBLIC_CLERK_DOMAIN"):
        load_settings({**base_env(DB), "NEXT_PUBLIC_CLERK_DOMAIN": "https://able-hound-12.clerk.accounts.dev"})


def test_bad_webhook_secret_is_a_config_error():
    from refbackend.webhooks import make_verifier

    with pytest.raises(ConfigError, match="CLERK_WEBHOOK_SECRET"):
        make_verifier(load_settings({**base_env(DB), "CLERK_WEBHOOK_SECRET": "whsec_not base64!"}))


@pytest.mark.parametrize(
    "url, expected",
    [
        ("postgresql://u@h/db", "postgresql+psycopg://u@h/db"),
        ("postgres://u@h/db", "postgresql+psycopg://u@h/db"),
        ("postgresql+psycopg2://u@h/db", "postgresql+psycopg://u@h/db"),
        ("postgresql+psycopg://u@h/db", "postgresql+psycopg://u@h/db"),
    ],
)
def test_database_url_is_converted_for_psycopg3(url, expected):
    assert sqlalchemy_url(url) == expected


def test_non_postgres_database_url_is_refused():
    with pytest.raises(ConfigError, match="DATABASE_URL"):
        sqlalchemy_url("mysql://u@h/db")


def test_publishable_key_host_decodes_the_clerk_example():
    assert publishable_key_host("pk_test_cHJvcGVyLXNwYXJyb3ctNDkuY2xlcmsuYWNjb3VudHMuZGV2JA") == "proper-sparrow-49.clerk.accounts.dev"
    assert publishable_key_host("pk_test_bm9kb2xsYXI") is None  # "nodollar"
    assert publishable_key_host("sk_test_abc") is None


def test_origin_wildcards_become_one_label_patterns():
    exact, regex = origin_rules(("http://localhost:3000/", "https://*.up.railway.app"), wildcards_literal=False)
    assert exact == ["http://localhost:3000"]
    assert re.fullmatch(regex, "https://my-app-prod.up.railway.app")
    assert not re.fullmatch(regex, "https://up.railway.app")
    assert not re.fullmatch(regex, "https://a.b.up.railway.app")
    assert not re.fullmatch(regex, "https://x.up-railway.app")  # dots are literal


def test_origin_wildcards_literal_under_the_fault():
    exact, regex = origin_rules(("https://*.up.railway.app",), wildcards_literal=True)
    assert exact == ["https://*.up.railway.app"] and regex is None
