"""Faults on the REST depth snapshot a syncing client fetches: stale, barely stale, too new, slow, or an error."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from replayer.faults.stream import fault_error
from replayer.faults.work import FaultContext, Work
from replayer.timeline import Disconnect, RestBehaviour


def snapshot(work: Work, ctx: FaultContext) -> None:
    """Answers the next `requests` depth requests in `mode` from start until stop.

    A client fetches a snapshot only when it (re)syncs, so by default the fault also disconnects every
    client at start (`trigger = "disconnect"`); with `trigger = "none"` it meets whatever fetch comes,
    such as the first one when the window starts at 0.
    """
    if ctx.stop_ns <= ctx.start_ns:
        raise fault_error(ctx, "the window must last longer than zero (start to stop)")
    params = ctx.params
    work.control(
        RestBehaviour(
            ctx.start_ns,
            params["mode"],
            params["requests"],
            status=params["status"] if params["mode"] == "error" else 200,
            delay_ns=round(params["delay"] * 1e9) if params["mode"] == "slow" else 0,
            lag_frames=_lag(params),
            fault=ctx.kind,
        )
    )
    if params["trigger"] == "disconnect":
        work.control(Disconnect(ctx.start_ns, "close", 1001, "going away", fault=ctx.kind))
    work.control(RestBehaviour(ctx.stop_ns, "normal", fault=ctx.kind))
    work.record(ctx, params["requests"], ctx.start_ns, ctx.stop_ns, ctx.stop_ns)


def _lag(params: Mapping[str, Any]) -> int:
    if params["mode"] == "barely_stale":
        return params["lag_updates"]
    return params["lag_frames"] if params["mode"] in ("stale", "too_new") else 0
