"""Settings for unit tests: every server URL points at a closed port, nothing is reached."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from footprint.settings import Settings, load_settings

__all__ = ["JWT_SECRET", "offline_settings"]

JWT_SECRET = "unit-tests-secret-0123456789abcdef"


def offline_settings(tmp_path: Path, **overrides: Any) -> Settings:
    """Settings whose servers are unreachable (127.0.0.1:1), data under ``tmp_path``."""
    return load_settings(
        **{
            "kafka_url": "kafka://127.0.0.1:1",
            "postgres_url": "postgresql://footprint:x@127.0.0.1:1/footprint",
            "clickhouse_url": "clickhouse://127.0.0.1:1/x",
            "redis_url": "redis://127.0.0.1:1/0",
            "jwt_secret": JWT_SECRET,
            "data_dir": tmp_path,
            **overrides,
        }
    )
