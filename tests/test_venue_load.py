"""The fake venue under load (bench/venue_load.py), short: ten clients, one stops reading, in `make test`.

The 50-client minute with latency figures is `make bench-load`; this keeps its guarantees checked:
the scenario's slow-consumer rule drops the stalled client and no other, every other client receives
every frame the venue wrote to it, and once they have all gone the venue holds no more descriptors or
tasks than before the first one came.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from bench.venue_load import run_in_process
from harness.replay import BUNDLED_FIXTURE

# The bundled fixture at 3x: the limit from 2 s of replay, a 0.3 s hold released at once at 2.4 s.
SCENARIO = """
name = "load_short"
description = "A 4 KiB client buffer limit early on, and a short hold released at once."
speed = 3
seed = 1

[[faults]]
kind = "slow_consumer"
start = "10%"
stop = "25%"
max_bytes = 4096
hold = 0.3

[expect]
"faults.slow_consumer" = 1
"""


def test_ten_clients_one_stalled_is_dropped_the_others_get_everything_nothing_leaks(tmp_path: Path) -> None:
    scenario = tmp_path / "load_short.toml"
    scenario.write_text(SCENARIO)
    figures = asyncio.run(
        run_in_process(
            recording=BUNDLED_FIXTURE,
            scenario=str(scenario),
            clients=10,
            seconds=4.0,
            stall_at_s=0.3,
            speed=None,
            folder=tmp_path,
            stall_rcvbuf=4096,
        )
    )
    assert figures.stalled_cause == "slow_consumer"
    assert figures.stalled_close_code == 1006  # dropped without a close frame, as a slow consumer is
    assert figures.dropped_causes == {}
    assert figures.clients == 10
    assert figures.healthy_short == []
    assert figures.frames_written == figures.frames_received > 9 * 300
    assert figures.largest_backlog > 4096
    before, after = figures.before, figures.after
    assert (after.fds, after.tasks, after.open_clients) == (before.fds, before.tasks, 0)
