"""The Apache Kafka jars and the tools that run them: Maven and a JDK found on the machine.

Maven resolves the broker's jars from ``apache-kafka.pom.xml`` beside this module (into
``~/.m2``, once); the classpath is cached under ``$XDG_CACHE_HOME/footprint`` per version of the
pom. A missing ``java`` or ``mvn`` says what to install.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import threading
from pathlib import Path

from footprint.stack.process import ServerStartError, run_checked

__all__ = ["KAFKA_VERSION", "POM", "kafka_classpath", "require_tool"]

POM = Path(__file__).with_name("apache-kafka.pom.xml")
KAFKA_VERSION = "4.1.1"
_INSTALL_HINT = (
    "Apache Kafka needs a JDK 17+ and Maven: apt-get install openjdk-17-jdk-headless maven "
    "(macOS: brew install openjdk@17 maven), or run FOOTPRINT_BROKER=tansu"
)
_classpath_lock = threading.Lock()


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "footprint"


def require_tool(name: str) -> str:
    """The path of ``name`` (java, mvn), or a ServerStartError saying what to install."""
    found = shutil.which(name)
    if found is None:
        raise ServerStartError(f"`{name}` not found. {_INSTALL_HINT}")
    return found


def kafka_classpath() -> str:
    """The broker's classpath (jars in the local Maven repository), resolved once and cached."""
    pom = POM.read_bytes()
    digest = hashlib.sha256(pom).hexdigest()[:12]
    cached = _cache_dir() / f"apache-kafka-{digest}.classpath"
    with _classpath_lock:
        if cached.exists():
            text = cached.read_text().strip()
            if text and all(Path(jar).exists() for jar in text.split(os.pathsep)):
                return text
        cached.parent.mkdir(parents=True, exist_ok=True)
        partial = cached.with_suffix(f".{os.getpid()}.tmp")
        run_checked(
            [
                require_tool("mvn"),
                "-B",
                "-q",
                "-f",
                str(POM),
                "dependency:build-classpath",
                f"-Dmdep.outputFile={partial}",
                "-DincludeScope=runtime",
            ],
            "resolving the Apache Kafka jars with Maven",
        )
        partial.replace(cached)
        return cached.read_text().strip()
