"""One ``newsflow run`` per home: ``$NEWSFLOW_HOME/run.lock``, held with ``flock`` while the
run lives, holds the run's pid.

A second run on the same home would join the same consumer groups, rebalance the first and
report the first one's work as its own; ``stack down`` would stop the stack under it. Both
check the lock first. ``flock`` is released by the kernel when the holder dies, so a killed
run never leaves a stale lock behind (the pid in the file is only for the message).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from types import TracebackType

from shared.errors import ConfigError

LOCK_FILE = "run.lock"


def lock_path(home: Path) -> Path:
    return home / LOCK_FILE


def _read_pid(fd: int) -> int | None:
    try:
        raw = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(raw) if raw.isdigit() else None


def holder(home: Path) -> int | None:
    """The pid of the live run holding *home*'s lock, or None when no run holds it."""
    path = lock_path(home)
    if not path.exists():
        return None
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read_pid(fd) or -1
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


class RunLock:
    """Context manager: hold *home*'s run lock, or raise ConfigError naming the holder."""

    def __init__(self, home: Path, *, what: str = "newsflow run") -> None:
        self.home = home
        self.what = what
        self._fd: int | None = None

    def acquire(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock_path(self.home), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _read_pid(fd)
            os.close(fd)
            who = f"pid {pid}" if pid else "another process"
            stop = f"Ctrl-C in its terminal or 'kill {pid}'" if pid else "stop it"
            raise ConfigError(
                f"another newsflow run ({who}) is using NEWSFLOW_HOME={self.home}: one run per "
                f"home. Stop it first ({stop}), or give this one its own NEWSFLOW_HOME.",
                kind="busy",
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(self._fd, 0)
        os.close(self._fd)  # closing drops the flock
        self._fd = None

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
