"""The recorder soak (bench/soak_record.py) for a few seconds: drops every second, then the books balance.

The ten-minute run with RSS sampling is `make soak`; this keeps its checks in `make test`: every frame the
recorder acknowledged is in the recording once, in order, a prefix of what the venue sent on its
connection (all of it after a clean close), and no descriptor, task or thread outlives the recorder.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from bench.soak_record import soak


def test_short_soak_loses_nothing_acknowledged_and_leaks_nothing(tmp_path: Path) -> None:
    result = asyncio.run(
        soak(seconds=3.0, rate=500, reconnect_every_s=1.0, output=tmp_path / "rec", venue_in_process=True)
    )
    assert result.problems == []
    assert result.acknowledged > 0 and result.summary.frames == result.acknowledged
    assert result.summary.reconnects >= 1 and len(result.sent) == result.summary.connections
    assert {r.ended_by for r in result.sent[:-1]} <= {"close", "abort"}
    before, after = result.before, result.after
    assert (after.fds, after.tasks, after.threads) == (before.fds, before.tasks, before.threads)
