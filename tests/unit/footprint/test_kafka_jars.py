"""footprint/stack/kafka_jars.py: a missing java or Maven says what to install."""

from __future__ import annotations

from pathlib import Path

import pytest

from footprint.stack import kafka_jars
from footprint.stack.process import ServerStartError


def test_a_missing_java_or_maven_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(kafka_jars.shutil, "which", lambda name: None)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    with pytest.raises(ServerStartError, match="`mvn` not found.*JDK 17\\+ and Maven"):
        kafka_jars.kafka_classpath()
