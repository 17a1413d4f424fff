"""``newsflow lag``: consumer-group lag per topic and partition (from the topology)."""

from __future__ import annotations

import asyncio

import typer

from services.cli.common import (
    JsonFlag,
    broker_bootstrap,
    broker_errors,
    emit_json,
    new_table,
    settings,
    show,
)


def register(app: typer.Typer) -> None:
    """Add ``lag`` to the root app."""

    @app.command("lag")
    def lag_cmd(as_json: JsonFlag = False) -> None:
        """Consumer-group lag per topic and partition (committed vs last stored offset)."""
        from services.cli.ops.lag import consumer_lag, group_topics, totals

        bootstrap = broker_bootstrap()
        s = settings()
        prefix = s.topic_prefix
        with broker_errors(bootstrap):
            rows = asyncio.run(
                consumer_lag(bootstrap, prefix=prefix, group_prefix=prefix, groups=group_topics(s))
            )
        if as_json:
            emit_json({"partitions": [r.to_json() for r in rows], "totals": totals(rows)})
            return
        table = new_table("group", "topic", "partition", "committed", "end", "lag")
        for r in rows:
            table.add_row(
                r.group,
                r.topic,
                str(r.partition),
                "-" if r.committed is None else str(r.committed),
                str(r.end) + ("" if r.exact else "+"),
                str(r.lag),
            )
        show(table)
        for group, per_topic in totals(rows).items():
            typer.echo(f"{group}: " + ", ".join(f"{t} {n}" for t, n in per_topic.items()), err=True)
