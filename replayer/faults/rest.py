"""Faults on the REST depth snapshot a syncing client fetches: stale, barely stale, too new, slow, or an error."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from replayer.faults.stream import Removal, fault_error
from replayer.faults.work import FaultContext, FaultStage, IndexSet, Present
from replayer.timeline import Disconnect, Frame, RestBehaviour


def snapshot(ctx: FaultContext, frames: Sequence[Frame], present: Present) -> FaultStage:
    """Answers the next `requests` depth requests in `mode` from start until stop.

    A client fetches a snapshot only when it (re)syncs, so by default the fault also disconnects every
    client at start (`trigger = "disconnect"`). `trigger = "gap"` instead loses the first depth update
    of each stream due in the window: a client that is connected detects the gap one frame later and
    refetches at once, with no reconnect (and no reconnect backoff) between the trigger and the fetch,
    so the fault is met even in a short window. With `trigger = "none"` it meets whatever fetch comes,
    such as the first one when the window starts at 0.
    """
    if ctx.stop_ns <= ctx.start_ns:
        raise fault_error(ctx, "the window must last longer than zero (start to stop)")
    params = ctx.params
    first: dict[str, int] = {}
    if params["trigger"] == "gap":
        for frame in frames:
            if ctx.eligible(frame):
                first.setdefault(frame.stream, frame.index)
        if not first:
            raise fault_error(ctx, "trigger 'gap' needs a depth update in the window")
    stage = Removal(ctx, chosen=IndexSet(first.values()), withhold=False)
    tags = tuple(stage.arm() for _ in range(params["requests"]))
    stage.controls.append(
        RestBehaviour(
            ctx.start_ns,
            params["mode"],
            params["requests"],
            status=params["status"] if params["mode"] == "error" else 200,
            delay_ns=round(params["delay"] * 1e9) if params["mode"] == "slow" else 0,
            lag_frames=_lag(params),
            fault=ctx.kind,
            tags=tags,
        )
    )
    if params["trigger"] == "disconnect":
        stage.controls.append(Disconnect(ctx.start_ns, "close", 1001, "going away", fault=ctx.kind))
    stage.controls.append(RestBehaviour(ctx.stop_ns, "normal", fault=ctx.kind))
    stage.record(params["requests"], ctx.start_ns, ctx.stop_ns, ctx.stop_ns)
    return stage


def _lag(params: Mapping[str, Any]) -> int:
    if params["mode"] == "barely_stale":
        return params["lag_updates"]
    return params["lag_frames"] if params["mode"] in ("stale", "too_new") else 0
