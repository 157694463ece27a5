"""footprint/settings.py: loading, required values and the entry points name the variable."""

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
from tests.unit.footprint.samples import VALID

pytestmark = pytest.mark.usefixtures("clean_env")


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
    monkeypatch.setenv("FOOTPRINT_REDIS_URL", VALID["FOOTPRINT_REDIS_URL"])
    assert load_settings().require("redis_url") == VALID["FOOTPRINT_REDIS_URL"]


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
