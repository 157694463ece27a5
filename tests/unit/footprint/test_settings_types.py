"""footprint/settings_types.py: server URLs and lists as the variables give them, checked."""

from __future__ import annotations

import pytest

from footprint.settings import SettingsError, load_settings
from tests.unit.footprint.samples import VALID

pytestmark = pytest.mark.usefixtures("clean_env")


def _set_valid(monkeypatch: pytest.MonkeyPatch, **bad: str) -> None:
    for key, value in {**VALID, **bad}.items():
        monkeypatch.setenv(key, value)


MALFORMED = [
    ("FOOTPRINT_KAFKA_URL", "http://broker:9092"),  # wrong scheme
    ("FOOTPRINT_KAFKA_URL", "kafka://broker:notaport"),
    ("FOOTPRINT_KAFKA_URL", "kafka://"),  # no host
    ("FOOTPRINT_KAFKA_URL", "kafka://a:9092,b:x"),  # second broker has a bad port
    ("FOOTPRINT_POSTGRES_URL", "http://db/footprint"),
    ("FOOTPRINT_POSTGRES_URL", "mysql://u:p@db:3306/footprint"),
    ("FOOTPRINT_POSTGRES_URL", "postgresql://u:p@db:abc/footprint"),
    ("FOOTPRINT_POSTGRES_URL", "postgresql://db:99999/footprint"),  # port out of range
    ("FOOTPRINT_POSTGRES_URL", "postgresql:///footprint"),
    ("FOOTPRINT_CLICKHOUSE_URL", "http://ch:8123"),
    ("FOOTPRINT_CLICKHOUSE_URL", "clickhouse://ch:x/footprint"),
    ("FOOTPRINT_CLICKHOUSE_URL", "clickhouse:///footprint"),
    ("FOOTPRINT_REDIS_URL", "http://cache:6379"),
    ("FOOTPRINT_REDIS_URL", "redis://cache:port/0"),
    ("FOOTPRINT_REDIS_URL", "redis:///0"),
]


@pytest.mark.parametrize(("variable", "value"), MALFORMED)
def test_malformed_url_names_its_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    _set_valid(monkeypatch, **{variable: value})
    with pytest.raises(SettingsError) as info:
        load_settings()
    message = str(info.value)
    assert variable in message
    # Only the offending variable is blamed: the three valid ones are not named.
    for other in VALID:
        if other != variable:
            assert other not in message


def test_every_malformed_variable_is_reported_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    _set_valid(
        monkeypatch,
        FOOTPRINT_KAFKA_URL="http://k",
        FOOTPRINT_REDIS_URL="redis://r:x",
    )
    with pytest.raises(SettingsError) as info:
        load_settings()
    assert "FOOTPRINT_KAFKA_URL" in str(info.value)
    assert "FOOTPRINT_REDIS_URL" in str(info.value)


def test_valid_urls_are_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    _set_valid(monkeypatch)
    s = load_settings()
    assert s.kafka_url == VALID["FOOTPRINT_KAFKA_URL"]
    assert s.postgres_url == VALID["FOOTPRINT_POSTGRES_URL"]
    assert s.clickhouse_url == VALID["FOOTPRINT_CLICKHOUSE_URL"]
    assert s.redis_url == VALID["FOOTPRINT_REDIS_URL"]
    assert s.kafka_bootstrap == "127.0.0.1:9092"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("FOOTPRINT_POSTGRES_URL", "postgres://u:p@db/footprint"),
        ("FOOTPRINT_REDIS_URL", "rediss://cache:6380/1"),
        ("FOOTPRINT_CLICKHOUSE_URL", "chdb:///var/lib/footprint/chdb"),
    ],
)
def test_alternative_schemes_accepted(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    _set_valid(monkeypatch, **{variable: value})
    s = load_settings()
    assert getattr(s, variable.removeprefix("FOOTPRINT_").lower()) == value


def test_chdb_path_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FOOTPRINT_CLICKHOUSE_URL", "chdb:///tmp/footprint/chdb")
    assert load_settings().clickhouse_url == "chdb:///tmp/footprint/chdb"


def test_kafka_broker_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FOOTPRINT_KAFKA_URL", "kafka://a:1,b:2")
    s = load_settings()
    assert s.kafka_bootstrap == "a:1,b:2"


def test_bare_host_port_is_kafka(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FOOTPRINT_KAFKA_URL", "broker.internal:9092")
    s = load_settings()
    assert s.kafka_url == "kafka://broker.internal:9092"
    assert s.kafka_bootstrap == "broker.internal:9092"


def test_empty_url_means_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FOOTPRINT_REDIS_URL", "")
    assert load_settings().redis_url is None


def test_exclude_paths_from_csv(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FOOTPRINT_EXCLUDE_PATHS", " /health, /admin ,,/static/ ")
    monkeypatch.setenv("FOOTPRINT_STATS_EXCLUDE_LINKS", "/ping")
    s = load_settings()
    assert s.exclude_paths == ["/health", "/admin", "/static/"]
    assert s.stats_exclude_links == ["/ping"]
