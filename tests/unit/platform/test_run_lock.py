"""One run per home: the second refuses with the first one's pid; a dead holder frees it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from shared.errors import ConfigError
from shared.run_lock import RunLock, holder

ROOT = Path(__file__).resolve().parents[3]
HOLD = (
    "import sys, time; from pathlib import Path; from shared.run_lock import RunLock\n"
    "with RunLock(Path(sys.argv[1])):\n    print('held', flush=True); time.sleep(60)\n"
)


def test_second_holder_is_refused_with_the_first_pid(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(tmp_path)], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
        assert holder(tmp_path) == proc.pid
        with pytest.raises(ConfigError) as info:
            RunLock(tmp_path).acquire()
        assert f"pid {proc.pid}" in info.value.detail
        assert str(tmp_path) in info.value.detail
    finally:
        proc.kill()
        proc.wait()
    # the kernel dropped the lock with the process: no stale lock
    deadline = time.monotonic() + 5
    while holder(tmp_path) is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert holder(tmp_path) is None
    with RunLock(tmp_path):
        assert holder(tmp_path) == os.getpid()
    assert holder(tmp_path) is None


def test_no_lock_file_means_no_run(tmp_path: Path) -> None:
    assert holder(tmp_path / "never-used") is None
