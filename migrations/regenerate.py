"""Regenerate the initial migration from the models against a scratch database.

Only valid while nothing has been deployed (no session has landed the schema yet); after
that, add revisions with ``alembic revision --autogenerate`` instead.
Usage: python -m migrations.regenerate SERVER_URL   (any database on the server; a scratch
database is created and dropped)
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import asyncpg
from alembic import command

from shared.db.migrate import MIGRATIONS_DIR, alembic_config

LZ4_COLUMNS = (("articles", "body_text"), ("articles", "lead"), ("dead_letters", "payload"))
#: Already-compressed bytes: TOAST compression would only waste CPU on them.
EXTERNAL_COLUMNS = (("pages", "payload_gz"),)


async def _admin(url: str, statement: str) -> None:
    conn = await asyncpg.connect(url.replace("+asyncpg", "").rsplit("/", 1)[0] + "/postgres")
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


def main(server_url: str) -> None:
    scratch = "newsflow_regenerate"
    asyncio.run(_admin(server_url, f"DROP DATABASE IF EXISTS {scratch}"))
    asyncio.run(_admin(server_url, f"CREATE DATABASE {scratch}"))
    try:
        _generate(server_url.rsplit("/", 1)[0] + "/" + scratch)
    finally:
        asyncio.run(_admin(server_url, f"DROP DATABASE IF EXISTS {scratch} WITH (FORCE)"))


def _generate(url: str) -> None:
    for old in (MIGRATIONS_DIR / "versions").glob("*_0001_*.py"):
        old.unlink()
    cfg = alembic_config(url)
    cfg.set_main_option("file_template", "%%(year)d_%%(month).2d_%%(day).2d_%%(rev)s_%%(slug)s")
    command.revision(cfg, message="initial schema", autogenerate=True, rev_id="0001")
    path = next((MIGRATIONS_DIR / "versions").glob("*_0001_*.py"))
    text = path.read_text()
    lz4 = "\n".join(
        f'    op.execute("ALTER TABLE {t} ALTER COLUMN {c} SET COMPRESSION lz4")'
        for t, c in LZ4_COLUMNS
    )
    marker = "    # ### end Alembic commands ###"
    text = text.replace(
        marker,
        marker
        + "\n    # Long text compresses ~3x faster with lz4 than pglz (NOTES.md); only where the\n"
        "    # server was built with it.\n"
        "    if _has_lz4():\n"
        + lz4.replace("    op.", "        op.")
        + "\n    # gzip payloads do not compress further: store them out of line, uncompressed.\n"
        + "\n".join(
            f'    op.execute("ALTER TABLE {t} ALTER COLUMN {c} SET STORAGE EXTERNAL")'
            for t, c in EXTERNAL_COLUMNS
        ),
        1,
    )
    text += (
        "\n\ndef _has_lz4() -> bool:\n"
        "    bind = op.get_bind()\n"
        "    if bind.dialect.server_version_info < (14,):\n"
        "        return False\n"
        "    return bool(bind.exec_driver_sql(\n"
        "        \"SELECT 1 FROM pg_settings WHERE name = 'default_toast_compression' \"\n"
        "        \"AND 'lz4' = ANY(enumvals)\").scalar())\n"
    )
    Path(path).write_text(text)
    print(path)


if __name__ == "__main__":
    main(sys.argv[1])
