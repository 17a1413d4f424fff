"""``$NEWSFLOW_HOME`` belongs to its owner alone.

Its logs hold URLs, feed names and errors, ``stack.json`` the database password: another
account on the machine must read nothing there. The entry points that write to the home
(``newsflow run``, ``stack up``, ``worker``) run with :data:`PRIVATE_UMASK` (so does every
child they start: the workers; the stack starts Tansu and ``pg_ctl`` with it), so new files
are 0600 and directories 0700; :func:`make_private`, called by every ``stack up`` and
``newsflow run``, tightens what an older version left readable (0644 logs, 0755 directories).

As root, PostgreSQL runs as the ``postgres`` user, which must reach its cluster and log
inside the home (``pg/``, ``logs/postgres.log``): a home keeps the execute bits it has (a
0755 home becomes 0711: traverse without listing; a 0700 one stays 0700 and its cluster
lives outside, as before) and its ``logs`` directory gets the same; the files in them are
0600, so nothing becomes readable. A PostgreSQL data directory is left as PostgreSQL keeps it.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

logger = logging.getLogger(__name__)

#: group and others get no bit on anything newsflow creates
PRIVATE_UMASK = 0o077
#: what is taken away from existing entries (the owner's bits are kept as they are)
GROUP_OTHER = 0o077
#: the traverse bits kept, as root, on the directories on the postgres user's path
OTHERS_TRAVERSE = 0o011
#: a directory holding this file is a PostgreSQL data directory: its modes are PostgreSQL's
PG_DATA_MARK = "PG_VERSION"
#: the bits PostgreSQL accepts on its data directory (0700, or 0750 for group access) ...
PG_DATA_DIR_MODES_OK = 0o750
#: ... and the mode a data directory with any other bit gets
PG_DATA_DIR_MODE = 0o700
#: entries of a home (the demo's home is a home inside the home)
LOGS_DIR = "logs"
HOME_MARKS = ("stack.json", "pg", LOGS_DIR)


def _is_home(path: Path, home: Path) -> bool:
    """*path* is the home or a home inside it (the demo's): it holds a stack's entries."""
    return path == home or any((path / mark).exists() for mark in HOME_MARKS)


def _private_mode(path: Path, home: Path, mode: int, *, as_root: bool) -> int:
    """The mode *path* (a directory, currently *mode*) gets: no group/other bits, except, as
    root, the traverse bits the postgres user needs to reach its cluster and log. Those are
    kept, never added: a home its owner made 0700 stays 0700 (its cluster then lives
    outside, see :func:`shared.stack.pg_paths`), and a ``logs`` directory is exactly as
    traversable as its home."""
    if not as_root:
        return mode & ~GROUP_OTHER
    if _is_home(path, home):
        return mode & ~GROUP_OTHER | (mode & OTHERS_TRAVERSE)
    if path.name == LOGS_DIR and _is_home(path.parent, home):
        parent = stat.S_IMODE(os.lstat(path.parent).st_mode)
        return mode & ~GROUP_OTHER | (parent & OTHERS_TRAVERSE)
    return mode & ~GROUP_OTHER


def _tighten(path: Path, mode: int) -> None:
    try:
        current = stat.S_IMODE(os.lstat(path).st_mode)
        if current != mode:
            os.chmod(path, mode)
    except OSError as exc:  # not ours to change (another account's file): leave it, say so
        logger.warning("could not make %s private: %s", path, exc)


def make_private(home: Path) -> None:
    """Take group/other permissions off everything under *home* (created if missing, with
    its ``logs`` directory), except the traverse bit the postgres user needs as root.
    Idempotent; symlinks are not followed; the process umask is not changed (entry points
    set :data:`PRIVATE_UMASK` themselves)."""
    home = home.resolve()
    # made with the caller's usual modes (as root, the postgres user may need to pass
    # through them), then tightened below
    home.mkdir(parents=True, exist_ok=True)
    (home / LOGS_DIR).mkdir(exist_ok=True)
    as_root = os.geteuid() == 0
    for dirpath, dirnames, filenames in os.walk(home):  # top-down: a home before its logs
        here = Path(dirpath)
        if (here / PG_DATA_MARK).exists():
            # PostgreSQL refuses to start on a data directory with modes other than 0700
            # or 0750 (a 0755 one from `chmod -R` or a copy made it hang, then fail): such a
            # one becomes 0700; a valid one, and what is inside, keep the server's modes
            if stat.S_IMODE(os.lstat(here).st_mode) & ~PG_DATA_DIR_MODES_OK:
                _tighten(here, PG_DATA_DIR_MODE)
            dirnames[:] = []
            continue
        current = stat.S_IMODE(os.lstat(here).st_mode)
        _tighten(here, _private_mode(here, home, current, as_root=as_root))
        for name in filenames:
            path = here / name
            info = os.lstat(path)
            if stat.S_ISREG(info.st_mode):
                _tighten(path, stat.S_IMODE(info.st_mode) & ~GROUP_OTHER)


def private_process(home: Path) -> int:
    """For an entry point: *home* is made private (:func:`make_private`), and this process
    (and every child it starts) creates private files from now on. Returns the previous
    umask, for a caller that runs in-process (the demo, tests) to restore when done."""
    make_private(home)
    return os.umask(PRIVATE_UMASK)
