"""``brownout control tail``: print the breaker board from the control topic, then follow changes.

The integrator mounts :func:`control_group` on the ``brownout`` command with a transport
factory (Kafka settings from the config file, env and flags)::

    main.add_command(control_group(lambda ctx: KafkaTransport(settings_from(ctx))))

>>> import asyncio
>>> from brownout.transport import MemoryTransport
>>> from brownout.breakers.record import ControlRecord
>>> t = MemoryTransport()
>>> rec = ControlRecord(Key("openai", "eastus", "gpt-4o"), "open", since=0.0, until=30.0,
...     reason="tripped", rule="error_breaker", seq=1, issued_at=0.0, expires_at=30.0)
>>> _ = t.append("brownout.control", rec.to_bytes(), rec.kafka_key())
>>> asyncio.run(tail_board(t, print, once=True, clock=lambda: 10.0))  # doctest: +NORMALIZE_WHITESPACE
KEY                   STATE  SINCE                 UNTIL                 REASON   RULE           SEQ  EXPIRES
openai/eastus/gpt-4o  open   1970-01-01T00:00:00Z  1970-01-01T00:00:30Z  tripped  error_breaker  1    in 20s
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime, timezone
from typing import Callable, Mapping, Sequence

import click
from prometheus_client import CollectorRegistry

from brownout import semconv as sc
from brownout.breakers.board import AsyncBreakerBoard
from brownout.breakers.record import ControlRecord, default_key_id
from brownout.model import Key
from brownout.transport.base import Record, Transport

__all__ = ["control_group", "tail_board"]

TransportFactory = Callable[[click.Context], Transport]
_COLUMNS = ("KEY", "STATE", "SINCE", "UNTIL", "REASON", "RULE", "SEQ", "EXPIRES")


def _iso(t: float | None) -> str:
    if t is None:
        return "-"
    try:
        return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (ValueError, OverflowError, OSError):  # a record from far outside this era
        return repr(t)


def _row(rec: ControlRecord, now: float) -> tuple[str, ...]:
    left = rec.expires_at - now
    expires = f"in {left:.0f}s" if left > 0 else f"expired {-left:.0f}s ago"
    return (str(rec.key), rec.state, _iso(rec.since), _iso(rec.until), rec.reason or "-",
            rec.rule or "-", str(rec.seq), expires)


def _table(rows: Sequence[tuple[str, ...]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]


class _Printer:
    """Prints a line per change (not per heartbeat) once the board is live."""

    def __init__(self, write: Callable[[str], None], json_lines: bool, clock: Callable[[], float]) -> None:
        self.write = write
        self.json_lines = json_lines
        self.clock = clock
        self.live = False
        self._last: dict[Key, tuple[str, int]] = {}

    def on_record(self, rec: ControlRecord | None, result: str, raw: Record) -> None:
        if rec is not None and result == "accepted":
            seen = (rec.state, rec.seq)
            changed = self._last.get(rec.key) != seen
            self._last[rec.key] = seen
            if not (self.live and changed):
                return
            if self.json_lines:
                self.write(json.dumps(rec.to_json(), separators=(",", ":")))
            else:
                self.write(f"{_iso(self.clock())}  {rec.key}  {rec.state}  reason={rec.reason or '-'}  "
                           f"rule={rec.rule or '-'}  seq={rec.seq}")
        elif self.live and result in ("refused", "invalid", "deleted"):
            key = (raw.key or b"").decode("utf-8", "replace")
            if self.json_lines:
                self.write(json.dumps({"result": result, "key": key}))
            else:
                self.write(f"{_iso(self.clock())}  {key}  {result}")


async def tail_board(transport: Transport, write: Callable[[str], None], *, topic: str = sc.TOPIC_CONTROL,
                     once: bool = False, duration: float | None = None,
                     verify_keys: Mapping[str, bytes] | Sequence[bytes] | None = None,
                     json_lines: bool = False, clock: Callable[[], float] = time.time) -> None:
    """Write the board as a table (or JSON lines), then follow changes until cancelled,
    for ``duration`` seconds, or not at all when ``once``."""
    printer = _Printer(write, json_lines, clock)
    board = AsyncBreakerBoard(transport, topic, verify_keys, clock=clock, registry=CollectorRegistry(),
                              on_record=printer.on_record)
    await board.start()
    try:
        recs = sorted(board.records().values(), key=lambda r: r.key)
        now = clock()
        if json_lines:
            for rec in recs:
                write(json.dumps(rec.to_json(), separators=(",", ":")))
        elif recs:
            for line in _table([_COLUMNS, *(_row(r, now) for r in recs)]):
                write(line)
        else:
            write(f"(no breaker records on {topic}: every key is closed)")
        printer.live = True
        if once:
            return
        if duration is None:
            await asyncio.Event().wait()
        else:
            await asyncio.sleep(duration)
    finally:
        await board.stop()


def control_group(transport_factory: TransportFactory | None = None) -> click.Group:
    """The ``control`` click group; ``transport_factory(ctx)`` makes the transport (else
    ``ctx.obj["transport_factory"]``)."""

    @click.group("control")
    def control() -> None:
        """The circuit-breaker control topic, as routers see it."""

    @control.command("tail")
    @click.option("--topic", default=sc.TOPIC_CONTROL, show_default=True, help="Control topic.")
    @click.option("--once", is_flag=True, help="Print the board and exit.")
    @click.option("--duration", type=float, default=None, help="Follow for this many seconds, then exit.")
    @click.option("--json", "json_lines", is_flag=True, help="One JSON control record per line.")
    @click.option("--verify-key-file", "key_files", multiple=True, type=click.Path(dir_okay=False),
                  help="Refuse records not signed with this key (repeat for rotation).")
    @click.option("--bootstrap-servers", help="Kafka to read from (overrides the configured transport).")
    @click.pass_context
    def tail(ctx: click.Context, topic: str, once: bool, duration: float | None, json_lines: bool,
             key_files: tuple[str, ...], bootstrap_servers: str | None) -> None:
        """Print the breaker board, then follow changes (Ctrl-C to stop)."""
        factory = transport_factory or (ctx.obj or {}).get("transport_factory")
        if bootstrap_servers:
            from brownout.transport.kafka import KafkaTransport

            def factory(ctx: click.Context) -> Transport:
                return KafkaTransport(bootstrap_servers)
        if factory is None:
            raise click.UsageError("no transport configured for `control tail`: pass --bootstrap-servers")
        keys: dict[str, bytes] = {}
        for path in key_files:
            with open(path, "rb") as fh:
                key = fh.read().strip()
            if not key:
                raise click.BadParameter(f"{path} is empty", param_hint="--verify-key-file")
            keys[default_key_id(key)] = key
        transport = factory(ctx)
        try:
            asyncio.run(tail_board(transport, click.echo, topic=topic, once=once, duration=duration,
                                   verify_keys=keys or None, json_lines=json_lines))
        except KeyboardInterrupt:
            pass

    return control


#: The group with the transport taken from ``ctx.obj["transport_factory"]``.
control = control_group()
