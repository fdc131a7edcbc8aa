"""The recorder against the hostile scenarios: the figures of docs/reliability.md, one table row each.

`python -m bench.hostile_record` runs the fake venue (the server API) walking each scenario's fault plan
on the bundled fixture while `record()` records from it, then replays each recording with `clean`.
`tests/test_recorder_hostile.py` drives the same helper and asserts what the rows show.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from collections import Counter
from pathlib import Path

from harness.client_state import BackoffPolicy, ClientEvent, ReconnectScheduled
from harness.inspect_recording import summarize
from harness.replay import BUNDLED_FIXTURE, ReplayRequest, run_replay
from harness.scenarios import load_scenario
from recorder.format import EventKind
from recorder.live import RecordConfig, RecordSummary, record
from replayer.replay_data import load_replay_data
from replayer.server import VenueServer
from replayer.timeline import Send

SCENARIOS = ("flappy_connection", "stall_half_open", "exchange_restart", "snapshot_errors")

SPEED = 12.0
"""The fixture's 60 s in 5 s; the 8 s half-open stall still lasts 0.67 s, twice the watchdog."""
WATCHDOG_S = 0.3
BACKOFF = BackoffPolicy(base_s=0.01, cap_s=0.08)
WAIT_S = 60.0


def hostile_config(server: VenueServer, output: Path, **overrides: object) -> RecordConfig:
    base: dict[str, object] = dict(
        venue="binance-spot",
        symbols=("BTCUSDT",),
        ws_url=server.ws_url,
        rest_url=server.rest_url,
        output=output,
        backoff_initial_s=BACKOFF.base_s,
        backoff_cap_s=BACKOFF.cap_s,
        snapshot_retry_s=0.02,
        watchdog_s=WATCHDOG_S,
        fsync=False,
        seed=7,
    )
    base.update(overrides)
    return RecordConfig(**base)  # type: ignore[arg-type]


async def record_through(
    scenario_name: str, output: Path, seed: int = 1
) -> tuple[RecordSummary, VenueServer, list[ClientEvent]]:
    """Records while the venue walks the scenario; stops once the last scheduled frame has arrived."""
    data = load_replay_data(BUNDLED_FIXTURE)
    plan = load_scenario(scenario_name).plan(data.frames, seed)
    last_index = [e for e in plan.entries if isinstance(e, Send)][-1].frame.index
    written: Counter[int] = Counter()
    received: Counter[int] = Counter()
    opens: list[int] = []
    client_events: list[ClientEvent] = []
    done = asyncio.Event()
    last_written = False

    def check_done() -> None:
        if last_written and opens and received[opens[-1]] == written[len(opens)]:
            done.set()

    def on_send(client_id: int, entry: Send, intended: int, write: int) -> None:
        nonlocal last_written
        written[client_id] += 1
        last_written = last_written or entry.frame.index == last_index
        check_done()

    def observe(kind: EventKind, conn_id: int, stream: str | None) -> None:
        if kind is EventKind.WS_OPEN:
            opens.append(conn_id)
        elif kind is EventKind.WS_RECV and stream is not None:
            received[conn_id] += 1
            check_done()

    server = VenueServer(data, schedule=plan.entries, speed=SPEED, on_send=on_send)
    await server.start()
    stop = asyncio.Event()
    try:
        recording = asyncio.ensure_future(
            record(hostile_config(server, output), stop=stop, observe=observe, observe_client=client_events.append)
        )
        waiting = asyncio.ensure_future(done.wait())
        await asyncio.wait({recording, waiting}, timeout=WAIT_S, return_when=asyncio.FIRST_COMPLETED)
        assert done.is_set(), "the recorder never received the schedule's last frame"
        stop.set()
        summary = await asyncio.wait_for(recording, WAIT_S)
    finally:
        await server.stop()
    return summary, server, client_events


def row(name: str, folder: Path) -> str:
    output = folder / name
    summary, server, events = asyncio.run(record_through(name, output))
    waits = [e.delay_s for e in events if isinstance(e, ReconnectScheduled)]
    holes = summarize(output)["holes"]
    report = run_replay(ReplayRequest("clean", recording=output))
    sync = report["sync"]
    cells = [
        f"`{name}`",
        summary.connections,
        summary.reconnects,
        summary.connect_failures,
        summary.watchdog_fired,
        f"{len(waits)} ({max(waits, default=0):.3f} s)",
        f"{summary.frames} of {len(server.data.frames)}",
        summary.snapshots,
        f"{holes['count']} ({holes['seconds']:.2f} s)",
        sync["divergent"],
        sync["holes_bridged"],
        "yes" if sync["final_book_correct"] else "no",
        f"{sync['recording_gaps']} / {sync['gaps_detected']}",
        f"{sync['coverage']:.3f}",
        "yes" if report["passed"] else "no",
    ]
    return "| " + " | ".join(str(c) for c in cells) + " |"


def main() -> int:
    print(
        "| scenario | connections | reconnects | refused handshakes | watchdog | backoff waits (max) | frames recorded "
        "of sent schedule | snapshots | holes (time without a connection) | divergent | holes bridged | final book "
        "correct | recording gaps / gaps detected | coverage | clean passes |"
    )
    print("|" + "---|" * 15)
    with tempfile.TemporaryDirectory(prefix="hostile-") as folder:
        for name in SCENARIOS:
            print(row(name, Path(folder)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
