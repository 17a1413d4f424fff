"""``$NEWSFLOW_HOME`` belongs to its owner alone.

Its logs hold URLs, feed names and errors, ``stack.json`` the database password: another
account on the machine must read nothing there. The entry points that write to the home
(``newsflow run``, ``stack up``, ``worker``) run with :data:`PRIVATE_UMASK` (so does every
child they start: the workers; the stack starts Tansu and ``pg_ctl`` with it), so new files
are 0600 and directories 0700; :func:`make_private`, called by every ``stack up`` and
``newsflow run``, tightens what an older version left readable (0644 logs, 0755 directories).

As root, PostgreSQL runs as the ``postgres`` user, which must reach its cluster and log
inside the home (``pg/``, ``logs/postgres.log``): a home and its ``logs`` directory then keep
the execute bit for others (0711, traverse without listing); the files in them stay 0600,
so nothing becomes readable. A PostgreSQL data directory is left as PostgreSQL keeps it.
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
#: the traverse bit others keep, as root, on the directories on the postgres user's path
OTHERS_TRAVERSE = 0o011
#: a directory holding this file is a PostgreSQL data directory: its modes are PostgreSQL's
PG_DATA_MARK = "PG_VERSION"
#: entries of a home (the demo's home is a home inside the home)
LOGS_DIR = "logs"
HOME_MARKS = ("stack.json", "pg", LOGS_DIR)


def _needs_traverse(path: Path, home: Path) -> bool:
    """As root, whether the postgres user must pass through directory *path* (a home, or
    the logs directory of one)."""
    if path == home or any((path / mark).exists() for mark in HOME_MARKS):
        return True
    return path.name == LOGS_DIR and path != home and _needs_traverse(path.parent, home)


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
    # missing parents get the caller's usual modes (as root, the postgres user may need to
    # pass through them); the home itself is tightened below
    home.mkdir(parents=True, exist_ok=True)
    (home / LOGS_DIR).mkdir(exist_ok=True)
    as_root = os.geteuid() == 0
    for dirpath, dirnames, filenames in os.walk(home):
        here = Path(dirpath)
        if (here / PG_DATA_MARK).exists():
            dirnames[:] = []  # PostgreSQL refuses a data directory with other modes
            continue
        mode = stat.S_IMODE(os.lstat(here).st_mode) & ~GROUP_OTHER
        if as_root and _needs_traverse(here, home):
            mode |= OTHERS_TRAVERSE
        _tighten(here, mode)
        for name in filenames:
            path = here / name
            info = os.lstat(path)
            if stat.S_ISREG(info.st_mode):
                _tighten(path, stat.S_IMODE(info.st_mode) & ~GROUP_OTHER)


def private_process(home: Path) -> None:
    """For an entry point: this process (and every child) creates private files from now
    on, and *home* is made private (:func:`make_private`)."""
    os.umask(PRIVATE_UMASK)
    make_private(home)
