"""footprint/settings.py: malformed server URLs stop start-up with a message naming the variable."""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from footprint.settings import Settings, SettingsError, load_settings

VALID = {
    "FOOTPRINT_KAFKA_URL": "kafka://127.0.0.1:9092",
    "FOOTPRINT_POSTGRES_URL": "postgresql://footprint:secret@127.0.0.1:5432/footprint",
    "FOOTPRINT_CLICKHOUSE_URL": "clickhouse://default:@127.0.0.1:9000/footprint",
    "FOOTPRINT_REDIS_URL": "redis://127.0.0.1:6379/0",
}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No FOOTPRINT_* variable from the caller, and no .env from the repository, leaks in."""
    for key in list(os.environ):
        if key.startswith("FOOTPRINT_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    return tmp_path


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


@pytest.mark.parametrize("name", ["kafka_url", "postgres_url", "clickhouse_url", "redis_url"])
def test_require_unset_names_variable(name: str) -> None:
    s = load_settings()
    assert getattr(s, name) is None
    with pytest.raises(SettingsError, match=f"FOOTPRINT_{name.upper()}"):
        s.require(name)


def test_kafka_bootstrap_unset_names_variable() -> None:
    with pytest.raises(SettingsError, match="FOOTPRINT_KAFKA_URL"):
        _ = load_settings().kafka_bootstrap


def test_require_returns_the_value(monkeypatch: pytest.MonkeyPatch) -> None:
    _set_valid(monkeypatch)
    assert load_settings().require("redis_url") == VALID["FOOTPRINT_REDIS_URL"]


def test_exclude_paths_from_csv(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FOOTPRINT_EXCLUDE_PATHS", " /health, /admin ,,/static/ ")
    monkeypatch.setenv("FOOTPRINT_STATS_EXCLUDE_LINKS", "/ping")
    s = load_settings()
    assert s.exclude_paths == ["/health", "/admin", "/static/"]
    assert s.stats_exclude_links == ["/ping"]


def test_exclude_paths_default_covers_the_api_itself() -> None:
    s = load_settings()
    assert "/health" in s.exclude_paths
    assert "/api/footprints" in s.exclude_paths


def test_out_of_range_number_names_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FOOTPRINT_PARTITIONS", "0")
    with pytest.raises(SettingsError, match="FOOTPRINT_PARTITIONS"):
        load_settings()


def test_overrides_win_over_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FOOTPRINT_KAFKA_URL", "kafka://from-env:9092")
    s = load_settings(kafka_url="kafka://override:1")
    assert s.kafka_bootstrap == "override:1"


def test_dotenv_in_cwd_is_read(clean_env: Path) -> None:
    (clean_env / ".env").write_text("FOOTPRINT_REDIS_URL=redis://from-dotenv:6379/2\n")
    assert Settings().redis_url == "redis://from-dotenv:6379/2"


def test_dotenv_malformed_value_names_variable(clean_env: Path) -> None:
    (clean_env / ".env").write_text("FOOTPRINT_POSTGRES_URL=http://nope\n")
    with pytest.raises(SettingsError, match="FOOTPRINT_POSTGRES_URL"):
        load_settings()


# --- start-up of the real entry points, in subprocesses ---------------------------------------
#
# Each takes a second or two (importing FastAPI, Faust...). They are started when this module is
# imported, so they run alongside the rest of the suite, and are awaited by the tests below.

FOOTPRINT_SCRIPT = Path(sys.executable).parent / "footprint"
ENTRY_POINTS: dict[str, tuple[list[str], dict[str, str]]] = {
    # Importing api.main (for create_app in tests and tools) needs no valid configuration;
    # getting its ``app``, as ``uvicorn api.main:app`` does, stops on the bad variable.
    "api": (
        [
            sys.executable,
            "-c",
            "import api.main; print(api.main.create_app.__name__, flush=True); "
            "from api.main import app",
        ],
        {"FOOTPRINT_POSTGRES_URL": "http://x"},
    ),
    "worker": ([sys.executable, "-c", "import streams.app"], {"FOOTPRINT_KAFKA_URL": "http://x"}),
    "migrate": ([str(FOOTPRINT_SCRIPT), "migrate"], {"FOOTPRINT_REDIS_URL": "redis://cache:abc/0"}),
}


_ENTRY_POINT_CWD = Path(tempfile.mkdtemp(prefix="footprint-entry-points-"))  # empty: no .env
atexit.register(shutil.rmtree, _ENTRY_POINT_CWD, ignore_errors=True)


def _start_entry_points() -> dict[str, subprocess.Popen[str]]:
    cwd = _ENTRY_POINT_CWD
    base = {k: v for k, v in os.environ.items() if not k.startswith("FOOTPRINT_")}
    procs = {}
    for name, (args, bad) in ENTRY_POINTS.items():
        if not Path(args[0]).exists():
            continue  # reported by the test
        procs[name] = subprocess.Popen(
            args,
            cwd=cwd,
            env={**base, **VALID, **bad},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    return procs


_ENTRY_POINT_PROCS = _start_entry_points()


@pytest.fixture(scope="module")
def entry_points() -> dict[str, tuple[int, str, str]]:
    """name -> (exit code, stdout, stderr)."""
    results = {}
    for name, proc in _ENTRY_POINT_PROCS.items():
        out, err = proc.communicate(timeout=60)
        results[name] = (proc.returncode, out, err)
    return results


def test_api_app_fails_naming_variable(entry_points: dict[str, tuple[int, str, str]]) -> None:
    code, out, err = entry_points["api"]
    assert out.strip() == "create_app", err  # the import itself worked
    assert code != 0
    assert "FOOTPRINT_POSTGRES_URL" in err
    assert "FOOTPRINT_KAFKA_URL" not in err
    assert "Traceback" not in err  # a message, not a stack trace


def test_worker_import_fails_naming_variable(entry_points: dict[str, tuple[int, str, str]]) -> None:
    code, _, err = entry_points["worker"]
    assert code != 0
    assert "FOOTPRINT_KAFKA_URL" in err
    assert "Traceback" not in err


def test_migrate_command_exits_2_naming_variable(
    entry_points: dict[str, tuple[int, str, str]],
) -> None:
    assert FOOTPRINT_SCRIPT.exists(), f"no footprint console script next to {sys.executable}"
    code, _, err = entry_points["migrate"]
    assert code == 2
    assert "FOOTPRINT_REDIS_URL" in err
    assert "Traceback" not in err


def test_trusted_proxies_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings().trusted_proxies == 0
    monkeypatch.setenv("FOOTPRINT_TRUSTED_PROXIES", "2")
    assert load_settings().trusted_proxies == 2
    monkeypatch.setenv("FOOTPRINT_TRUSTED_PROXIES", "-1")
    with pytest.raises(SettingsError, match="FOOTPRINT_TRUSTED_PROXIES"):
        load_settings()


def test_deprecated_trust_forwarded_for_means_one_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FOOTPRINT_TRUST_FORWARDED_FOR", "true")
    assert load_settings().trusted_proxies == 1
    monkeypatch.setenv("FOOTPRINT_TRUSTED_PROXIES", "2")  # the new variable wins
    assert load_settings().trusted_proxies == 2
    monkeypatch.delenv("FOOTPRINT_TRUSTED_PROXIES")
    monkeypatch.setenv("FOOTPRINT_TRUST_FORWARDED_FOR", "false")
    assert load_settings().trusted_proxies == 0
