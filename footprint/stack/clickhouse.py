"""A local ClickHouse server (Debian's ``clickhouse-server``) for the embedded stack and tests."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import ClassVar
from xml.sax.saxutils import escape

from footprint.stack.ports import tcp_open
from footprint.stack.process import ServerProcess, ServerStartError

__all__ = ["ClickHouseServer", "find_clickhouse_server"]

DATABASE = "footprint"


def find_clickhouse_server() -> list[str] | None:
    """The argv prefix that runs a ClickHouse server, or None when none is installed."""
    found = shutil.which("clickhouse-server")
    if found:
        return [found]
    # /usr/sbin is not on a non-root user's PATH, which is where Debian installs it.
    for candidate in ("/usr/sbin/clickhouse-server", "/usr/bin/clickhouse-server"):
        if os.access(candidate, os.X_OK):
            return [candidate]
    single = shutil.which("clickhouse")  # the official single binary: `clickhouse server`
    if single:
        return [single, "server"]
    return None


# `<yandex>` is the root element 18.x requires; current servers accept it as well. Only the TCP
# (native) port is opened: no HTTP, no interserver port to collide with anything.
_CONFIG = """<?xml version="1.0"?>
<yandex>
    <logger>
        <level>information</level>
        <log>{data}/clickhouse-server.log</log>
        <errorlog>{data}/clickhouse-server.err.log</errorlog>
        <size>10M</size>
        <count>2</count>
        <console>0</console>
    </logger>
    <listen_host>{host}</listen_host>
    <tcp_port>{port}</tcp_port>
    <path>{data}/data/</path>
    <tmp_path>{data}/tmp/</tmp_path>
    <user_files_path>{data}/user_files/</user_files_path>
    <format_schema_path>{data}/format_schemas/</format_schema_path>
    <users_config>{data}/users.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <timezone>UTC</timezone>
    <max_concurrent_queries>16</max_concurrent_queries>
    <max_connections>256</max_connections>
    <!-- the defaults (5 GiB and 8 GiB) are sized for a dedicated server -->
    <mark_cache_size>67108864</mark_cache_size>
    <uncompressed_cache_size>67108864</uncompressed_cache_size>
    <mlock_executable>false</mlock_executable>
</yandex>
"""

_USERS = """<?xml version="1.0"?>
<yandex>
    <profiles>
        <default>
            <max_memory_usage>2000000000</max_memory_usage>
            <max_threads>2</max_threads>
            <use_uncompressed_cache>0</use_uncompressed_cache>
            <!-- an idle connection notices a shutdown only at its next poll (default 10 s):
                 without this, stopping the server with a client connected takes 10 s -->
            <poll_interval>1</poll_interval>
        </default>
    </profiles>
    <users>
        <default>
            <password></password>
            <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
            <profile>default</profile>
            <quota>default</quota>
        </default>
    </users>
    <quotas><default></default></quotas>
</yandex>
"""


class ClickHouseServer(ServerProcess):
    """``clickhouse-server`` on 127.0.0.1 with a generated config under ``data_dir``."""

    name: ClassVar[str] = "clickhouse"

    def __init__(
        self, data_dir: Path | str, port: int | None = None, *, start_timeout: float = 30.0
    ) -> None:
        super().__init__(data_dir, port, start_timeout=start_timeout)
        self.database = DATABASE

    @property
    def url(self) -> str:
        """The native-protocol URL for ``footprint.clickhouse.connect``."""
        return f"clickhouse://default@{self.host}:{self.port}/{self.database}"

    @property
    def config_path(self) -> Path:
        """The generated server config."""
        return self.data_dir / "config.xml"

    def prepare(self) -> None:
        """Write the config (the port may differ from the previous run) and the directories."""
        for sub in ("data", "tmp", "user_files", "format_schemas"):
            (self.data_dir / sub).mkdir(parents=True, exist_ok=True)
        data = escape(str(self.data_dir))
        self.config_path.write_text(_CONFIG.format(data=data, host=self.host, port=self.port))
        (self.data_dir / "users.xml").write_text(_USERS)

    def command(self) -> list[str]:
        """``clickhouse-server --config-file=…`` in the foreground."""
        argv = find_clickhouse_server()
        if argv is None:
            raise ServerStartError(
                "no ClickHouse server is installed: `apt-get install clickhouse-server` (Debian), "
                "or set FOOTPRINT_CLICKHOUSE_URL to a server or to chdb:///path"
            )
        # Running as root is accepted: the server only switches user when the data dir belongs to
        # someone else, and here the same process creates it.
        return [*argv, f"--config-file={self.config_path}"]

    def probe(self) -> bool:
        """Whether ``SELECT 1`` answers over the native protocol."""
        # A plain TCP check first: the driver logs a warning with a traceback on every refusal.
        if not tcp_open(self.host, self.port):
            return False
        from clickhouse_driver import Client

        client = Client(
            self.host, port=self.port, connect_timeout=1, send_receive_timeout=2, database="default"
        )
        try:
            return bool(client.execute("SELECT 1") == [(1,)])
        finally:
            client.disconnect()

    def after_ready(self) -> None:
        """Create the ``footprint`` database."""
        from clickhouse_driver import Client

        client = Client(self.host, port=self.port, database="default")
        try:
            client.execute(f"CREATE DATABASE IF NOT EXISTS {self.database}")
        finally:
            client.disconnect()
