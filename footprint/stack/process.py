"""A server run as a child process: started, probed until ready, paused, stopped, always reaped.

A server never outlives its parent for long: it gets its stop signal when the parent dies
(Linux), and the next start on its data dir stops whatever an earlier parent left running
(see ``footprint/stack/orphans.py``, which also stops, at exit, every server this process
started). Ports and the default readiness probe are in ``footprint/stack/ports.py``.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import logging
import os
import shlex
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar, Self

from footprint.stack import orphans
from footprint.stack.ports import free_port, tcp_open

__all__ = ["ServerProcess", "ServerStartError", "run_checked"]

log = logging.getLogger(__name__)

LOG_TAIL_LINES = 40


class ServerStartError(RuntimeError):
    """A server exited or never became ready; the message carries the tail of its log."""


class ServerProcess:
    """A server run as a child in its own process group, logging under its data dir."""

    name: ClassVar[str] = "server"
    # The signal that asks the server for a clean, prompt shutdown.
    stop_signal: ClassVar[signal.Signals] = signal.SIGTERM
    host: ClassVar[str] = "127.0.0.1"

    def __init__(
        self, data_dir: Path | str, port: int | None = None, *, start_timeout: float = 30.0
    ) -> None:
        self.data_dir = Path(data_dir).absolute()
        self.port: int = port if port is not None else free_port(self.host)
        self.start_timeout = start_timeout
        self.started_in: float | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._paused = False

    # --- what a subclass provides ---

    def command(self) -> list[str]:
        """The argv that runs the server in the foreground."""
        raise NotImplementedError

    def probe(self) -> bool:
        """Whether the server answers; called repeatedly until it returns True."""
        return tcp_open(self.host, self.port)

    def prepare(self) -> None:
        """Work done before each start (create directories, initialise a data dir)."""

    def after_ready(self) -> None:
        """Work done once the server answers (create a database)."""

    def popen_kwargs(self) -> dict[str, Any]:
        """Extra keyword arguments for ``subprocess.Popen`` (env, user, cwd)."""
        return {}

    # --- state ---

    @property
    def url(self) -> str:
        """The URL clients use to reach the server."""
        raise NotImplementedError

    @property
    def log_path(self) -> Path:
        """The file the server's stdout and stderr go to."""
        return self.data_dir / f"{self.name}.log"

    @property
    def pid(self) -> int | None:
        """The pid of the server process, or None when it is not started."""
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        """Whether the server process exists and has not exited."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def paused(self) -> bool:
        """Whether the server is stopped with SIGSTOP."""
        return self._paused

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        """The last ``lines`` lines of the server's log."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def __repr__(self) -> str:
        return f"<{type(self).__name__} port={self.port} pid={self.pid} dir={self.data_dir}>"

    # --- lifecycle ---

    def start(self) -> Self:
        """Start the server and block until it answers, or raise ServerStartError."""
        if self.running:
            return self
        began = time.monotonic()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        orphans.stop_leftover(self.data_dir)
        self.prepare()
        argv = self.command()
        with self.log_path.open("ab") as logf:
            stamp = _dt.datetime.now().isoformat(timespec="seconds")
            logf.write(f"\n--- {stamp} starting: {shlex.join(argv)}\n".encode())
            logf.flush()
            # Own session and process group: a Ctrl-C at the parent's terminal reaches only the
            # parent, which then stops the servers in order through the atexit hook.
            self._proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=logf,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=orphans.die_with_parent(self.stop_signal),
                **self.popen_kwargs(),
            )
        orphans.record(self.data_dir, self.name, self._proc.pid, self.stop_signal)
        self._paused = False
        orphans.register(self)
        try:
            self._wait_ready(began)
            self.after_ready()
        except BaseException:
            self.kill()
            raise
        self.started_in = time.monotonic() - began
        log.info("%s ready on port %d in %.2fs", self.name, self.port, self.started_in)
        return self

    def _wait_ready(self, began: float) -> None:
        deadline = began + self.start_timeout
        delay = 0.01
        last_error: BaseException | None = None
        proc = self._proc
        assert proc is not None
        while True:
            code = proc.poll()
            if code is not None:
                raise ServerStartError(
                    f"{self.name} exited with code {code} while starting "
                    f"(log {self.log_path}):\n{self.log_tail()}"
                )
            try:
                if self.probe():
                    return
            except Exception as e:  # any probe failure just means "not ready yet"
                last_error = e
            if time.monotonic() >= deadline:
                why = f"; last probe error: {last_error!r}" if last_error else ""
                raise ServerStartError(
                    f"{self.name} did not become ready on port {self.port} within "
                    f"{self.start_timeout:.0f}s{why} (log {self.log_path}):\n{self.log_tail()}"
                )
            time.sleep(delay)
            delay = min(delay * 2, 0.2)

    def _tree(self) -> list[int]:
        if not self.running:
            return []
        assert self._proc is not None
        return orphans.process_tree(self._proc.pid)

    def signal_tree(self, sig: signal.Signals) -> None:
        """Send ``sig`` to the server and every process it started."""
        orphans.signal_all(self._tree(), sig)

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the server to shut down, wait up to ``timeout`` seconds, then SIGKILL it."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            tree = self._tree()
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, self.stop_signal)
            # A paused server would sit on the pending stop signal forever.
            orphans.signal_all(tree, signal.SIGCONT)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop within %.0fs; killing it", self.name, timeout)
                orphans.signal_all(tree + self._tree(), signal.SIGKILL)
                proc.wait()
        self._forget()

    def kill(self) -> None:
        """SIGKILL the server and everything it started, losing in-memory state."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            self.signal_tree(signal.SIGKILL)
            proc.wait()
        self._forget()

    def _forget(self) -> None:
        orphans.forget(self.data_dir)
        self._proc = None
        self._paused = False
        orphans.unregister(self)
        self.after_stop()

    def after_stop(self) -> None:
        """Clean-up after the process is gone (temporary socket dirs)."""

    def pause(self) -> None:
        """SIGSTOP the server: connections hang as in an outage, in-memory state is kept."""
        if not self.running:
            raise RuntimeError(f"{self.name} is not running")
        self.signal_tree(signal.SIGSTOP)
        self._paused = True

    def resume(self) -> None:
        """SIGCONT a paused server."""
        if self.running:
            self.signal_tree(signal.SIGCONT)
        self._paused = False

    def restart(self) -> Self:
        """Stop, then start again on the same port and data dir."""
        self.stop()
        return self.start()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def run_checked(argv: Sequence[str], what: str, **kwargs: Any) -> str:
    """Run a one-shot helper command; on failure raise ServerStartError with its output."""
    result = subprocess.run(
        list(argv),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
        **kwargs,
    )
    if result.returncode != 0:
        output = (result.stdout + result.stderr).strip().splitlines()[-LOG_TAIL_LINES:]
        raise ServerStartError(
            f"{what} failed with code {result.returncode}: {shlex.join(argv)}\n" + "\n".join(output)
        )
    return str(result.stdout)
