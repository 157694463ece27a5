"""Site domains, keys and the scope of stats credentials: pure logic, no servers."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.auth import (
    ALL_SITES,
    AuthError,
    NotAllowed,
    SiteHidden,
    authorize_stats,
    mint_token,
)
from api.main import create_app
from api.sites import SiteRegistry, Snapshot
from footprint.settings import Settings, load_settings
from footprint.site_keys import (
    KEY_PREFIX,
    LINK_PREFIX,
    hash_secret,
    is_site_secret,
    new_key,
    new_link_token,
    normalise_domain,
)
from tests.unit.offline import offline_settings


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("example.com", "example.com"),
        ("  Blog.Example.COM. ", "blog.example.com"),
        ("localhost", "localhost"),
        ("bücher.example", "xn--bcher-kva.example"),
        ("127.0.0.1", "127.0.0.1"),
        ("[::1]", "::1"),
    ],
)
def test_domains_are_stored_as_the_host_header_shows_them(given: str, stored: str) -> None:
    assert normalise_domain(given) == stored


@pytest.mark.parametrize(
    ("given", "says"),
    [
        ("https://example.com", "without a scheme"),
        ("example.com/blog", "without a path"),
        ("example.com:8080", "without a port"),
        ("user@example.com", "without a user"),
        ("example.com?x=1", "without a query"),
        ("", "required"),
        ("exa mple.com", "not a valid domain"),
        ("-bad-.com", "not a valid domain"),
        ("a" * 64 + ".com", "not a valid domain"),
        ("Goals", "a path of the sites API"),
        ("funnels.", "a path of the sites API"),
    ],
)
def test_bad_domains_are_refused_saying_why(given: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        normalise_domain(given)


def test_keys_are_random_prefixed_and_stored_as_sha256() -> None:
    key, other, link = new_key(), new_key(), new_link_token()
    assert key.startswith(KEY_PREFIX) and link.startswith(LINK_PREFIX) and key != other
    assert len(key) == len(KEY_PREFIX) + 43  # 32 bytes, URL-safe base64
    assert hash_secret(key) == hashlib.sha256(key.encode()).digest()
    assert is_site_secret(key) and is_site_secret(link)
    assert not is_site_secret("eyJhbGciOiJIUzI1NiJ9.e30.x") and not is_site_secret(None)


@pytest.fixture
def settings() -> Settings:
    return load_settings(jwt_secret="unit-tests-secret-0123456789abcdef")


@pytest.fixture
def registry() -> tuple[SiteRegistry, str, str, str]:
    key_a, key_revoked, link_a = new_key(), new_key(), new_link_token()
    registry = SiteRegistry(auto_register=False, refresh_seconds=5)
    registry.snapshot = Snapshot(
        sites=frozenset({"a.example", "b.example"}),
        keys={hash_secret(key_a): "a.example"},
        links={hash_secret(link_a): "a.example"},
    )
    return registry, key_a, link_a, key_revoked


def test_a_key_reads_its_own_site_only(
    settings: Settings, registry: tuple[SiteRegistry, str, str, str]
) -> None:
    sites, key, link, revoked = registry
    for credential, kind in ((key, "key"), (link, "link")):
        access = authorize_stats(settings, credential, sites, site="a.example")
        assert (access.kind, access.site) == (kind, "a.example")
        assert authorize_stats(settings, credential, sites, site="A.Example ").site == "a.example"
        with pytest.raises(SiteHidden):
            authorize_stats(settings, credential, sites, site="b.example")
        with pytest.raises(SiteHidden):  # a site that does not exist looks the same
            authorize_stats(settings, credential, sites, site="nowhere.example")
        with pytest.raises(NotAllowed, match="every site"):
            authorize_stats(settings, credential, sites, site=ALL_SITES)
        # A route that decides later shows the credential's own site by default.
        assert authorize_stats(settings, credential, sites).site_for(None) == "a.example"
    with pytest.raises(AuthError, match="revoked"):
        authorize_stats(settings, revoked, sites, site="a.example")
    with pytest.raises(AuthError):  # a key's hash is not a link's
        authorize_stats(settings, LINK_PREFIX + key[len(KEY_PREFIX) :], sites)


def test_an_admin_reads_every_site_and_a_user_none(
    settings: Settings, registry: tuple[SiteRegistry, str, str, str]
) -> None:
    sites = registry[0]
    admin = mint_token(settings, "mod", admin=True)
    for site in ("a.example", "b.example", "", ALL_SITES):
        assert authorize_stats(settings, admin, sites, site=site).site is None
    assert authorize_stats(settings, admin, sites).site_for(None) is None  # every site
    with pytest.raises(NotAllowed):
        authorize_stats(settings, mint_token(settings, "alice"), sites, site="a.example")


def test_unknown_sites_are_refused_unless_auto_registered() -> None:
    strict = SiteRegistry(auto_register=False, refresh_seconds=5)
    strict.snapshot = Snapshot(sites=frozenset({"a.example"}))
    assert strict.known("a.example") and strict.known("")  # "" is the default site
    assert not strict.known("b.example")
    auto = SiteRegistry(auto_register=True, refresh_seconds=5)
    assert auto.known("b.example") and "b.example" in auto.snapshot.sites


def test_auto_registration_defaults_to_development_only() -> None:
    assert load_settings(env="development").auto_registers_sites()
    assert not load_settings(env="development").auto_registers_sites("0.0.0.0")
    assert not load_settings(env="production").auto_registers_sites()
    assert not load_settings(env="development", auto_register_sites=False).auto_registers_sites()
    assert load_settings(env="production", auto_register_sites=True).auto_registers_sites()


def test_the_registry_without_postgresql_answers_503(tmp_path: Path) -> None:
    app = create_app(
        load_settings(
            kafka_url="kafka://127.0.0.1:1",
            postgres_url="postgresql://footprint:x@127.0.0.1:1/footprint",
            clickhouse_url="clickhouse://127.0.0.1:1/x",
            redis_url="redis://127.0.0.1:1/0",
            jwt_secret="unit-tests-secret-0123456789abcdef",
            data_dir=tmp_path,
        )
    )
    admin = {"Authorization": f"Bearer {mint_token(app.state.settings, 'mod', admin=True)}"}
    r = TestClient(app).post("/api/v1/sites", json={"domain": "a.example"}, headers=admin)
    assert r.status_code == 503 and "not open" in r.json()["detail"]


def test_the_dashboard_learns_which_sites_a_credential_reads(
    tmp_path: Path, registry: tuple[SiteRegistry, str, str, str]
) -> None:
    sites, key, link, revoked = registry
    settings = offline_settings(tmp_path)
    app = create_app(settings)
    app.state.sites = sites  # no lifespan: the registry as read from PostgreSQL
    client = TestClient(app)

    def answer(token: str) -> tuple[int, object]:
        r = client.get("/api/stats/sites", headers={"Authorization": f"Bearer {token}"})
        return r.status_code, r.json()

    admin = mint_token(settings, "mod", admin=True)
    assert answer(admin) == (200, {"access": "admin", "sites": ["a.example", "b.example"]})
    # A key or a link learns its own site and nothing of the others.
    assert answer(key) == (200, {"access": "key", "sites": ["a.example"]})
    assert answer(link) == (200, {"access": "link", "sites": ["a.example"]})
    assert answer(revoked)[0] == 401
    assert answer(mint_token(settings, "alice"))[0] == 403
