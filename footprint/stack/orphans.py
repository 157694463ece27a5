"""No orphans: a server dies with the process that started it, and a leftover is stopped.

Three guards, used by ``ServerProcess`` for every server:

- ``die_with_parent(sig)``: on Linux the child asks the kernel (``prctl(PR_SET_PDEATHSIG)``) for
  ``sig`` when its parent goes away, even by SIGKILL. The kernel ties this to the parent *thread*,
  so it is only used for servers started on the main thread: a server a helper thread restarts
  (the fault tests do) would otherwise die when that thread ends.
- A pid file (``server.pid`` in the server's data dir: pid, start time, argv). The next start on
  the same data dir stops a server it finds there still running: the JVM or a server started off
  the main thread may outlive a killed parent, macOS has no pdeathsig, and PostgreSQL refuses a
  data dir whose postmaster still runs. A pid is only trusted when the process's start time is the
  recorded one and its command line or working directory names the data dir.
- A registry of the servers this process started: ``stop_all`` runs at exit and stops what a
  crashed or forgetful caller left running; ``kill_all`` is the last resort of a stop that hangs.

Signals go to a server's whole process tree (``process_tree``): a server may put children in
sessions of their own (postgres backends call setsid), so signalling its group alone would miss
them.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import ctypes.util
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import psutil

if TYPE_CHECKING:
    from footprint.stack.process import ServerProcess

__all__ = [
    "PIDFILE",
    "die_with_parent",
    "forget",
    "kill_all",
    "leftovers",
    "process_tree",
    "record",
    "register",
    "signal_all",
    "stop_all",
    "stop_leftover",
    "unregister",
]

log = logging.getLogger(__name__)

PIDFILE = "server.pid"
_PR_SET_PDEATHSIG = 1


def _prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    except OSError:
        return None
    return getattr(libc, "prctl", None)


_PRCTL = _prctl()


def die_with_parent(sig: signal.Signals) -> Callable[[], None] | None:
    """A ``preexec_fn`` that makes the child get ``sig`` when this thread dies, or None."""
    if _PRCTL is None or threading.current_thread() is not threading.main_thread():
        return None
    prctl = _PRCTL
    parent = os.getpid()

    def preexec() -> None:
        # Runs in the child between fork and exec (after Popen's setuid, which would clear it).
        prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the request was made
            os.kill(os.getpid(), sig)

    return preexec


def record(data_dir: Path, name: str, pid: int, stop_signal: signal.Signals) -> None:
    """Write the pid file of a server just started in ``data_dir``."""
    with contextlib.suppress(psutil.Error, OSError):
        started = psutil.Process(pid).create_time()
        saved = {"name": name, "pid": pid, "started": started, "stop_signal": int(stop_signal)}
        (data_dir / PIDFILE).write_text(json.dumps(saved))


def forget(data_dir: Path) -> None:
    """Remove the pid file of a server that is gone."""
    with contextlib.suppress(OSError):
        (data_dir / PIDFILE).unlink()


def _ours(data_dir: Path) -> tuple[psutil.Process, str, signal.Signals] | None:
    """The live server the pid file in ``data_dir`` names: process, name, stop signal."""
    try:
        saved = json.loads((data_dir / PIDFILE).read_text())
        proc = psutil.Process(int(saved["pid"]))
        if abs(proc.create_time() - float(saved["started"])) > 0.01:
            return None  # the pid now belongs to another process
        where = str(data_dir)
        cwd = ""
        with contextlib.suppress(psutil.Error):
            cwd = proc.cwd()
        if cwd == where or any(where in arg for arg in proc.cmdline()):
            return proc, str(saved["name"]), signal.Signals(int(saved["stop_signal"]))
    except (OSError, ValueError, KeyError, TypeError, psutil.Error):
        pass
    return None


def stop_leftover(data_dir: Path, timeout: float = 10.0) -> bool:
    """Stop a server an earlier process left running in ``data_dir``; True if there was one."""
    found = _ours(data_dir)
    if found is None:
        forget(data_dir)
        return False
    proc, name, sig = found
    log.warning(
        "stopping %s (pid %d), left running in %s by an earlier run", name, proc.pid, data_dir
    )
    with contextlib.suppress(psutil.Error):
        tree = [proc, *proc.children(recursive=True)]
        proc.send_signal(sig)
        for p in tree:  # a paused leftover would sit on the signal
            with contextlib.suppress(psutil.Error):
                p.resume()
        _, alive = psutil.wait_procs([proc], timeout=timeout)
        for p in [*alive, *(c for c in tree if c.is_running())]:
            with contextlib.suppress(psutil.Error):
                p.kill()
        psutil.wait_procs(tree, timeout=timeout)
    forget(data_dir)
    return True


def leftovers(root: Path) -> list[Path]:
    """Data dirs under ``root`` (one or two levels down) that hold a server's pid file."""
    return [p.parent for pattern in (f"*/{PIDFILE}", f"*/*/{PIDFILE}") for p in root.glob(pattern)]


def process_tree(pid: int) -> list[int]:
    """``pid`` and every process it started, however deep."""
    try:
        return [pid, *(child.pid for child in psutil.Process(pid).children(recursive=True))]
    except psutil.Error:  # gone already: only its group may be left
        return [pid]


def signal_all(pids: Iterable[int], sig: signal.Signals) -> None:
    """Send ``sig`` to the group of the first pid and to every pid (a tree from process_tree)."""
    pids = list(pids)
    if not pids:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pids[0], sig)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


# Every started server, so the atexit hook can stop what a crashed or forgetful caller left running.
_registry: dict[int, ServerProcess] = {}
_registry_lock = threading.Lock()


def register(server: ServerProcess) -> None:
    """Remember a started server until ``unregister``, for ``stop_all`` and ``kill_all``."""
    with _registry_lock:
        _registry[id(server)] = server


def unregister(server: ServerProcess) -> None:
    """Forget a server that is gone."""
    with _registry_lock:
        _registry.pop(id(server), None)


def stop_all() -> None:
    """Stop every server this Python process started and has not stopped yet, newest first."""
    with _registry_lock:
        servers = list(_registry.values())
    for server in reversed(servers):
        try:
            server.stop()
        except Exception:  # at exit, one failure must not leave the others running
            log.exception("could not stop %s", server)


atexit.register(stop_all)


def kill_all() -> None:
    """SIGKILL every server this Python process started: the last resort of a stop that hangs."""
    with _registry_lock:
        servers = list(_registry.values())
    for server in servers:
        with contextlib.suppress(Exception):
            server.signal_tree(signal.SIGKILL)
