"""Faults on the connection rather than on frames: stalls, disconnects, refused handshakes, a client
too slow to keep up, and an exchange restart. They become control entries for the server; where a
fault also loses or holds frames, its stage changes the sends too.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Literal

from replayer.faults.stream import Holding, fault_error
from replayer.faults.work import FaultContext, FaultStage, Present, spread
from replayer.timeline import (
    UNLIMITED,
    UNTIL_HEALED,
    ClientBufferLimit,
    Disconnect,
    Frame,
    HalfOpen,
    RefuseHandshakes,
    RestBehaviour,
    Slot,
    Stall,
)

DISCONNECT_MODES: tuple[Literal["close", "abort", "reset"], ...] = ("close", "abort", "reset")


def _need_window(ctx: FaultContext, at_least_ns: int = 1) -> None:
    if ctx.stop_ns - ctx.start_ns < at_least_ns:
        raise fault_error(ctx, f"the window must last at least {at_least_ns / 1e9:g}s (start to stop)")


def stall(ctx: FaultContext, frames: Sequence[Frame], present: Present) -> FaultStage:
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
    stage = FaultStage(ctx)
    for at in spread(ctx.stream(), ctx.start_ns, ctx.stop_ns, count, duration_ns):
        tag = stage.arm()
        if ctx.params["mode"] == "half_open":
            stage.controls.append(HalfOpen(at, fault=ctx.kind, tags=(tag,)))
            stage.record(1, at, at, at)
            continue
        stage.controls.append(Stall(at, duration_ns, ctx.params["answer_pings"], fault=ctx.kind, tags=(tag,)))
        stage.record(1, at, at + duration_ns, at + duration_ns)
    return stage


def disconnect(ctx: FaultContext, frames: Sequence[Frame], present: Present) -> FaultStage:
    """`count` disconnects of every client, spread over the window (start == stop: one moment), at least
    `spacing` seconds apart, so that a client cut by one has had time to come back for the next."""
    count = ctx.params["count"]
    spacing_ns = round(ctx.params["spacing"] * 1e9)
    if count > 1 and count * spacing_ns > ctx.stop_ns - ctx.start_ns:
        raise fault_error(ctx, f"{count} disconnects {ctx.params['spacing']:g}s apart do not fit in the window")
    stage, rng = FaultStage(ctx), ctx.stream()
    for at in spread(rng, ctx.start_ns, ctx.stop_ns, count, spacing_ns if count > 1 else 0):
        pick = rng.choice(DISCONNECT_MODES)
        mode = pick if ctx.params["mode"] == "mixed" else ctx.params["mode"]
        tag = stage.arm()
        stage.controls.append(
            Disconnect(at, mode, ctx.params["code"], ctx.params["reason"], fault=ctx.kind, tags=(tag,))
        )
        stage.record(1, at, at, at)
    return stage


def handshake_refused(ctx: FaultContext, frames: Sequence[Frame], present: Present) -> FaultStage:
    """Refuses the next `attempts` handshakes with `status` (and by default disconnects everyone, so
    that the refusals are met); the stop entry upgrades again whatever is left."""
    _need_window(ctx)
    status, attempts = ctx.params["status"], ctx.params["attempts"]
    stage = FaultStage(ctx)
    tags = tuple(stage.arm() for _ in range(attempts))
    stage.controls.append(RefuseHandshakes(ctx.start_ns, status, attempts, fault=ctx.kind, tags=tags))
    if ctx.params["disconnect"]:
        stage.controls.append(Disconnect(ctx.start_ns, "close", 1001, "going away", fault=ctx.kind))
    stage.controls.append(RefuseHandshakes(ctx.stop_ns, status, 0, fault=ctx.kind))
    stage.record(attempts, ctx.start_ns, ctx.stop_ns, ctx.stop_ns)
    return stage


def slow_consumer(ctx: FaultContext, frames: Sequence[Frame], present: Present) -> FaultStage:
    """Sets a per-client buffer limit of `max_bytes`, then holds the stream for `hold` seconds and
    releases it at once, so the backlog of a client that cannot take it all overflows and the server
    drops it, as Binance drops slow readers. The limit is lifted at stop."""
    hold_ns = round(ctx.params["hold"] * 1e9)
    _need_window(ctx, hold_ns + 1)
    stage = Holding(ctx, holds=[(ctx.start_ns, ctx.start_ns + hold_ns)], one_unit=True)
    stage.controls.append(ClientBufferLimit(ctx.start_ns, ctx.params["max_bytes"], fault=ctx.kind))
    stage.arm()
    stage.controls.append(ClientBufferLimit(ctx.stop_ns, UNLIMITED, fault=ctx.kind))
    stage.record(1, ctx.start_ns, ctx.start_ns + hold_ns, ctx.stop_ns)
    return stage


def exchange_restart(ctx: FaultContext, frames: Sequence[Frame], present: Present) -> FaultStage:
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
    stage = Outage(ctx, parts=("ws", "rest") if outage_ns else ("ws",))
    tag = stage.arm()
    rest_back = ctx.stop_ns + outage_ns
    stage.controls.extend(
        (
            RefuseHandshakes(ctx.start_ns, 503, UNTIL_HEALED, fault=ctx.kind),
            RestBehaviour(ctx.start_ns, "error", UNTIL_HEALED, status=503, fault=ctx.kind),
            Disconnect(
                ctx.start_ns, ctx.params["mode"], ctx.params["code"], "exchange restart", fault=ctx.kind, tags=(tag,)
            ),
            RefuseHandshakes(ctx.stop_ns, 503, 0, fault=ctx.kind),
        )
    )
    if outage_ns:
        rest_tag = replace(tag, part="rest")
        stage.controls.append(
            RestBehaviour(ctx.stop_ns, "error", UNTIL_HEALED, status=503, fault=ctx.kind, tags=(rest_tag,))
        )
    stage.controls.append(RestBehaviour(rest_back, "normal", fault=ctx.kind))
    stage.record(1, ctx.start_ns, rest_back, rest_back)
    return stage


@dataclass(eq=False)
class Outage(FaultStage):
    """Every frame due while the venue is down (by its recorded time) is lost: all its sends go."""

    def removes(self, frame: Frame) -> bool:
        return self.ctx.start_ns <= frame.offset_ns < self.ctx.stop_ns

    def apply(self, slots: Iterator[Slot], build: bool) -> Iterator[Slot]:
        start, stop = self.ctx.start_ns, self.ctx.stop_ns
        return (slot for slot in slots if not start <= slot.send.frame.offset_ns < stop)
