"""footprint/settings_secrets.py: outside development, no missing or published secret."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from api.main import create_app
from footprint.cli import main
from footprint.settings import Settings, SettingsError, get_settings, load_settings
from footprint.settings_secrets import KNOWN_SECRETS

FRESH = {name: secrets.token_hex(32) for name in KNOWN_SECRETS}
PUBLISHED = [(name, value) for name, values in KNOWN_SECRETS.items() for value in values]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    for key in list(os.environ):
        if key.startswith("FOOTPRINT_"):
            monkeypatch.delenv(key)
    # `footprint token` sets it itself: recorded as unset here, so it is removed afterwards.
    monkeypatch.setenv("FOOTPRINT_JWT_SECRET", "")
    monkeypatch.chdir(tmp_path)  # no .env from the repository
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def _settings(**overrides: object) -> Settings:
    return load_settings(**{**FRESH, **overrides})


def test_every_known_secret_is_a_setting() -> None:
    assert set(KNOWN_SECRETS) <= set(Settings.model_fields)


def test_development_on_loopback_tolerates_development_values() -> None:
    _settings(jwt_secret=None).enforce_secrets()
    for name, value in PUBLISHED:
        _settings(**{name: value}).enforce_secrets("127.0.0.1")


def test_production_refuses_a_missing_jwt_secret() -> None:
    with pytest.raises(SettingsError, match="FOOTPRINT_JWT_SECRET is not set") as e:
        _settings(env="production", jwt_secret=None).enforce_secrets()
    assert "FOOTPRINT_ENV=production" in str(e.value)


@pytest.mark.parametrize(("name", "value"), PUBLISHED)
def test_production_refuses_every_published_value(name: str, value: str) -> None:
    variable = f"FOOTPRINT_{name.upper()}"
    with pytest.raises(SettingsError, match=f"{variable} is a value published with Footprint"):
        _settings(env="production", **{name: value}).enforce_secrets()


def test_every_problem_is_named_at_once() -> None:
    settings = load_settings(env="production")
    with pytest.raises(SettingsError) as e:
        settings.enforce_secrets()
    assert "FOOTPRINT_JWT_SECRET" in str(e.value)
    assert "openssl rand -hex 32" in str(e.value)


def test_fresh_secrets_pass_in_production() -> None:
    _settings(env="production").enforce_secrets("0.0.0.0")


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "example.com", ""])
def test_a_non_loopback_bind_is_not_development(host: str) -> None:
    with pytest.raises(SettingsError, match=f"bound to {host}.*FOOTPRINT_JWT_SECRET"):
        _settings(jwt_secret=None).enforce_secrets(host)
    with pytest.raises(SettingsError, match="FOOTPRINT_JWT_SECRET is a value published"):
        _settings(host=host, jwt_secret=KNOWN_SECRETS["jwt_secret"][0]).enforce_secrets()


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "localhost", "::1", "[::1]"])
def test_loopback_binds_are_development(host: str) -> None:
    assert _settings(host=host).development()


def test_the_api_refuses_to_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FOOTPRINT_HOST", "0.0.0.0")
    monkeypatch.setenv("FOOTPRINT_JWT_SECRET", KNOWN_SECRETS["jwt_secret"][1])
    with pytest.raises(SettingsError, match="FOOTPRINT_JWT_SECRET"):
        create_app(load_settings(kafka_url="kafka://127.0.0.1:1"))


def test_footprint_token_refuses_in_production(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FOOTPRINT_ENV", "production")
    assert main(["token", "--admin", "mod"]) == 2
    captured = capsys.readouterr()
    assert "FOOTPRINT_JWT_SECRET is not set" in captured.err
    assert captured.out == "", "no token minted with the development secret"


def test_footprint_token_uses_the_development_secret_on_a_laptop(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["token", "alice"]) == 0
    assert capsys.readouterr().out.count(".") == 2  # a JWT: header.payload.signature
