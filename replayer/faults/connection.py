"""Faults on the connection rather than on frames: stalls, disconnects, refused handshakes, a client
too slow to keep up, and an exchange restart. They become control entries for the server; where a
fault also loses or holds frames, it changes the sends too.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Literal

from replayer.faults.stream import fault_error, hold
from replayer.faults.work import FaultContext, Work, spread
from replayer.timeline import (
    UNLIMITED,
    UNTIL_HEALED,
    ClientBufferLimit,
    Disconnect,
    HalfOpen,
    RefuseHandshakes,
    RestBehaviour,
    Stall,
)

DISCONNECT_MODES: tuple[Literal["close", "abort", "reset"], ...] = ("close", "abort", "reset")


def _need_window(ctx: FaultContext, at_least_ns: int = 1) -> None:
    if ctx.stop_ns - ctx.start_ns < at_least_ns:
        raise fault_error(ctx, f"the window must last at least {at_least_ns / 1e9:g}s (start to stop)")


def stall(work: Work, ctx: FaultContext) -> None:
    """`count` stalls spread over the window.

    mode `late`: `duration` seconds of silence, after which the held frames go out late; without
    `answer_pings` the connection looks half-open meanwhile. mode `half_open`: the connections open at
    that moment never deliver again (HalfOpen) while new ones are served at once, so only a client that
    notices the silence (a watchdog) gets its book back; the window heals at that moment, and moments
    are at least `duration` apart so that a client has time to notice one before the next.
    """
    duration_ns = round(ctx.params["duration"] * 1e9)
    count = ctx.params["count"]
    _need_window(ctx, count * duration_ns)
    for at in spread(ctx.rng, ctx.start_ns, ctx.stop_ns, count, duration_ns):
        tag = work.arm(ctx)
        if ctx.params["mode"] == "half_open":
            work.control(HalfOpen(at, fault=ctx.kind, tags=(tag,)))
            work.record(ctx, 1, at, at, at)
            continue
        work.control(Stall(at, duration_ns, ctx.params["answer_pings"], fault=ctx.kind, tags=(tag,)))
        work.record(ctx, 1, at, at + duration_ns, at + duration_ns)


def disconnect(work: Work, ctx: FaultContext) -> None:
    """`count` disconnects of every client, spread over the window (start == stop: one moment), at least
    `spacing` seconds apart, so that a client cut by one has had time to come back for the next."""
    count = ctx.params["count"]
    spacing_ns = round(ctx.params["spacing"] * 1e9)
    if count > 1 and count * spacing_ns > ctx.stop_ns - ctx.start_ns:
        raise fault_error(ctx, f"{count} disconnects {ctx.params['spacing']:g}s apart do not fit in the window")
    for at in spread(ctx.rng, ctx.start_ns, ctx.stop_ns, count, spacing_ns if count > 1 else 0):
        pick = ctx.rng.choice(DISCONNECT_MODES)
        mode = pick if ctx.params["mode"] == "mixed" else ctx.params["mode"]
        tag = work.arm(ctx)
        work.control(Disconnect(at, mode, ctx.params["code"], ctx.params["reason"], fault=ctx.kind, tags=(tag,)))
        work.record(ctx, 1, at, at, at)


def handshake_refused(work: Work, ctx: FaultContext) -> None:
    """Refuses the next `attempts` handshakes with `status` (and by default disconnects everyone, so
    that the refusals are met); the stop entry upgrades again whatever is left."""
    _need_window(ctx)
    status, attempts = ctx.params["status"], ctx.params["attempts"]
    tags = tuple(work.arm(ctx) for _ in range(attempts))
    work.control(RefuseHandshakes(ctx.start_ns, status, attempts, fault=ctx.kind, tags=tags))
    if ctx.params["disconnect"]:
        work.control(Disconnect(ctx.start_ns, "close", 1001, "going away", fault=ctx.kind))
    work.control(RefuseHandshakes(ctx.stop_ns, status, 0, fault=ctx.kind))
    work.record(ctx, attempts, ctx.start_ns, ctx.stop_ns, ctx.stop_ns)


def slow_consumer(work: Work, ctx: FaultContext) -> None:
    """Sets a per-client buffer limit of `max_bytes`, then holds the stream for `hold` seconds and
    releases it at once, so the backlog of a client that cannot take it all overflows and the server
    drops it, as Binance drops slow readers. The limit is lifted at stop."""
    hold_ns = round(ctx.params["hold"] * 1e9)
    _need_window(ctx, hold_ns + 1)
    work.control(ClientBufferLimit(ctx.start_ns, ctx.params["max_bytes"], fault=ctx.kind))
    tag = work.arm(ctx)
    for slot in hold(work, ctx, ctx.start_ns, ctx.start_ns + hold_ns, depth_only=False):
        slot.tag(tag)
    work.control(ClientBufferLimit(ctx.stop_ns, UNLIMITED, fault=ctx.kind))
    work.record(ctx, 1, ctx.start_ns, ctx.start_ns + hold_ns, ctx.stop_ns)


def exchange_restart(work: Work, ctx: FaultContext) -> None:
    """The venue goes down from start to stop and comes back.

    Binance spot's update ids never reset, so a restart is: every client disconnected, handshakes
    and REST answered 503 while down, and every frame due while down lost (a gap in the depth stream).
    With `rest_outage` REST stays down that many seconds after the WebSocket is back, so a client that
    reconnects fetches its snapshot while REST still fails; the restart is then served only when both
    happened (it closed a client, and a snapshot was refused after the WebSocket was back).
    A venue whose sequence numbers do reset needs an entry for that when it is added.
    """
    _need_window(ctx)
    outage_ns = round(ctx.params["rest_outage"] * 1e9)
    tag = work.arm(ctx, ("ws", "rest") if outage_ns else ("ws",))
    rest_back = ctx.stop_ns + outage_ns
    work.control(
        RefuseHandshakes(ctx.start_ns, 503, UNTIL_HEALED, fault=ctx.kind),
        RestBehaviour(ctx.start_ns, "error", UNTIL_HEALED, status=503, fault=ctx.kind),
        Disconnect(
            ctx.start_ns, ctx.params["mode"], ctx.params["code"], "exchange restart", fault=ctx.kind, tags=(tag,)
        ),
        RefuseHandshakes(ctx.stop_ns, 503, 0, fault=ctx.kind),
    )
    if outage_ns:
        rest_tag = replace(tag, part="rest")
        work.control(RestBehaviour(ctx.stop_ns, "error", UNTIL_HEALED, status=503, fault=ctx.kind, tags=(rest_tag,)))
    work.control(RestBehaviour(rest_back, "normal", fault=ctx.kind))
    work.remove({f.index for f in work.frames if ctx.start_ns <= f.offset_ns < ctx.stop_ns})
    work.record(ctx, 1, ctx.start_ns, rest_back, rest_back)
