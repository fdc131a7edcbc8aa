"""The recorder against the fake venue while it runs the hostile scenarios, then the recording replayed.

For each scenario the fake venue walks the scenario's fault plan on the bundled fixture, and the recorder
records from it. The recording must show every outage as a `ws_close` then a `ws_open`, hold no frame
twice (each connection's frames are what the venue wrote to it, in order), fetch a snapshot on every
connection, reach every reconnect through the client's backoff policy, be listed hole by hole by
`harness inspect`, and replay `clean` with no divergence.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from bench.hostile_record import BACKOFF, SPEED, WAIT_S, WATCHDOG_S, record_through
from harness.client_state import (
    ClientEvent,
    ConnectFailed,
    ConnectionOpened,
    DisconnectCause,
    Disconnected,
    ReconnectScheduled,
)
from harness.inspect_recording import summarize
from harness.replay import BUNDLED_FIXTURE, ReplayRequest, run_replay
from harness.scenarios import load_scenario
from recorder.format import EventKind, RecordedEvent
from replayer.reader import Recording
from replayer.replay_data import load_replay_data
from replayer.server import VenueServer

REPO = Path(__file__).resolve().parent.parent


def by_connection(events: list[RecordedEvent]) -> dict[int, list[RecordedEvent]]:
    conns: dict[int, list[RecordedEvent]] = {}
    for event in events:
        if event.kind in (EventKind.WS_OPEN, EventKind.WS_RECV, EventKind.WS_CLOSE):
            conns.setdefault(event.conn_id, []).append(event)
    return conns


def assert_backoff_before_every_reconnect(client_events: list[ClientEvent]) -> None:
    """Between one connection's end (or a failed attempt) and the next attempt there is a backoff wait
    drawn from the policy: never above its ceiling for that retry."""
    waiting_for_backoff = False
    for event in client_events:
        if isinstance(event, Disconnected | ConnectFailed):
            waiting_for_backoff = True
        elif isinstance(event, ReconnectScheduled):
            assert 0 <= event.delay_s <= BACKOFF.ceiling(event.attempt)
            waiting_for_backoff = False
        elif isinstance(event, ConnectionOpened):
            assert not waiting_for_backoff, "reconnected without a backoff wait"


@pytest.mark.parametrize(
    ("scenario_name", "min_reconnects"),
    [("flappy_connection", 6), ("stall_half_open", 1), ("exchange_restart", 1), ("snapshot_errors", 3)],
)
def test_recorder_survives_a_hostile_venue_and_its_recording_replays_clean(
    tmp_path: Path, scenario_name: str, min_reconnects: int
) -> None:
    output = tmp_path / "rec"
    summary, server, client_events = asyncio.run(record_through(scenario_name, output))
    data = server.data

    assert summary.reconnects >= min_reconnects
    assert_backoff_before_every_reconnect(client_events)
    if scenario_name == "stall_half_open":
        assert summary.watchdog_fired >= 1
        assert any(isinstance(e, Disconnected) and e.cause is DisconnectCause.WATCHDOG for e in client_events)
    if scenario_name == "exchange_restart":
        # Refused handshakes (503) while the venue is down, each retry with a longer backoff ceiling.
        failures = [e for e in client_events if isinstance(e, ConnectFailed)]
        assert failures and all("503" in e.error or e.status_code == 503 for e in failures)

    events = list(Recording(output).iter_events())
    conns = by_connection(events)
    opens = [e for e in events if e.kind is EventKind.WS_OPEN]
    assert len(opens) == summary.connections == len(server.clients)
    # Every connection is whole: opened first, closed last; an outage is a close, then an open.
    for own in conns.values():
        assert own[0].kind is EventKind.WS_OPEN and own[-1].kind is EventKind.WS_CLOSE
        assert [e.kind for e in own[1:-1]] == [EventKind.WS_RECV] * (len(own) - 2)
    lifecycle = [e.kind for e in events if e.kind in (EventKind.WS_OPEN, EventKind.WS_CLOSE)]
    assert lifecycle == [EventKind.WS_OPEN, EventKind.WS_CLOSE] * len(opens)

    # No frame twice: each connection holds what the venue wrote to it, in order (an abort or a watchdog
    # may lose what was in flight; a close frame loses nothing), and no payload is on two connections.
    payload_of = {frame.index: frame.payload for frame in data.frames}
    for opened, client in zip(opens, server.clients.values(), strict=True):
        assert (opened.url or "").endswith(client.path)
        recorded = [e.payload for e in conns[opened.conn_id] if e.kind is EventKind.WS_RECV]
        sent = [payload_of[s.frame_index] for s in client.sends]
        assert recorded == sent[: len(recorded)]
        if conns[opened.conn_id][-1].status != 1006:
            assert len(recorded) == len(sent)  # a close frame comes after everything written before it
    frames = [e.payload for e in events if e.kind is EventKind.WS_RECV]
    assert len(frames) == len(set(frames)) == summary.frames

    # A snapshot is fetched again on every connection that saw a depth frame, after that frame.
    requests = [e for e in events if e.kind is EventKind.HTTP_REQUEST]
    for opened in opens:
        first_depth = next((e for e in conns[opened.conn_id] if e.stream is not None and "@depth" in e.stream), None)
        if first_depth is not None:
            assert any(r.seq > first_depth.seq for r in requests)
    statuses = Counter(e.status for e in events if e.kind is EventKind.HTTP_RESPONSE)
    assert statuses[200] >= 1
    if scenario_name == "snapshot_errors":
        assert statuses[429] >= 1 and statuses[503] >= 1

    listed = summarize(output)["holes"]
    assert listed["count"] == summary.reconnects
    closes = [e for e in events if e.kind is EventKind.WS_CLOSE]
    assert [(h["close_seq"], h["open_seq"], h["code"]) for h in listed["items"]] == [
        (close.seq, opened.seq, close.status) for close, opened in zip(closes, opens[1:], strict=False)
    ]

    # Replayed at the clean scenario's own pace: never a book that claims synced and differs, and the
    # right book at the end. The holes are in the recording, so the subject meets them as gaps (the
    # oracle counts them as `recording_gaps`), which clean allows as losses of sync; its coverage floor
    # assumes a recording without holes and is the only expectation allowed to miss.
    report = run_replay(ReplayRequest("clean", recording=output))
    sync = report["sync"]
    assert sync["divergent"] == 0 and sync["unknown_update_ids"] == 0 and sync["holes_bridged"] == 0
    assert sync["final_book_correct"] is True
    assert sync["recording_gaps"] <= summary.reconnects
    assert sync["gaps_detected"] <= sync["recording_gaps"]
    missed = {e["name"] for e in report["expectations"] if not e["passed"]}
    assert sync["losses_detected"] <= sync["recording_gaps"]
    assert missed <= {"sync.coverage >= 0.95"}, report["expectations"]
    assert report["passed"] is (sync["coverage"] >= 0.95)


def test_harness_record_cli_survives_a_half_open_venue_and_inspect_lists_the_holes(tmp_path: Path) -> None:
    """The same through the command line: `harness record --watchdog --header`, then `harness inspect`."""
    data = load_replay_data(BUNDLED_FIXTURE)
    plan = load_scenario("stall_half_open").plan(data.frames, 1)
    output = tmp_path / "rec"
    key = "cli-api-key-0123456789abcdef"

    async def main() -> tuple[int | None, str]:
        server = VenueServer(data, schedule=plan.entries, speed=SPEED)
        await server.start()
        try:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "harness.cli", "record", "--symbols", "BTCUSDT", "--ws-url", server.ws_url,
                "--rest-url", server.rest_url, "--watchdog", str(WATCHDOG_S), "--header", f"X-MBX-APIKEY: {key}",
                "--seconds", "6", "-o", str(output),
                stderr=asyncio.subprocess.PIPE, cwd=REPO,
            )  # fmt: skip
            _, stderr = await asyncio.wait_for(proc.communicate(), WAIT_S)
        finally:
            await server.stop()
        return proc.returncode, stderr.decode()

    returncode, stderr = asyncio.run(main())
    assert returncode == 0, stderr
    events = list(Recording(output).iter_events())
    closes = [e for e in events if e.kind is EventKind.WS_CLOSE]
    assert [c.reason for c in closes[:-1]] == ["watchdog"] * (len(closes) - 1) and len(closes) >= 2
    assert all(key.encode() not in segment.read_bytes() for segment in output.iterdir())
    inspected = subprocess.run(
        [sys.executable, "-m", "harness.cli", "inspect", str(output)], capture_output=True, text=True, cwd=REPO,
        check=True,
    )  # fmt: skip
    holes = [line for line in inspected.stdout.splitlines() if " closed 1006 (watchdog), " in line]
    assert len(holes) == len(closes) - 1
    assert f"holes       {len(closes) - 1}  (" in inspected.stdout
