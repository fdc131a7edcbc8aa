"""`harness record` on venues that subscribe by message and send the book on the stream (Bybit, OKX).

The venue is the fake one serving a synth recording of that venue, on 127.0.0.1; the new recording
must replay clean through the default subject, which is what makes it a recording worth having.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import orjson
import pytest
from websockets.asyncio.server import ServerConnection, serve

from harness.client_state import ClientEvent, Disconnected
from harness.errors import HarnessError
from harness.replay import ReplayRequest, run_replay
from harness.synth.run import write_synthetic_recording
from recorder.format import EventKind
from recorder.live import RecordConfig, make_config, record
from replayer.reader import Recording
from replayer.replay_data import load_replay_data, wire_of
from replayer.server import VenueServer
from replayer.timeline import Disconnect, TimelineEntry, clean_schedule

WAIT_S = 20.0
SPEED = 2.0
"""Fast, yet slow enough that the recorder is back before the venue has sent everything (at speed 0
the fake venue would serve the second half to nobody while the recorder backs off)."""
SYMBOLS = {"bybit": ("BTCUSDT", "ETHUSDT"), "okx": ("BTC-USDT", "ETH-USDT")}


def _config(venue: str, server: VenueServer, output: Path) -> RecordConfig:
    return RecordConfig(
        venue=venue,
        symbols=SYMBOLS[venue],
        ws_url=server.ws_url,
        rest_url=server.rest_url,
        output=output,
        backoff_initial_s=0.01,
        backoff_cap_s=0.05,
        fsync=False,
        seed=1,
    )


async def _record_served(venue: str, served: Path, output: Path, reconnect: bool) -> None:
    """Records what the fake venue serves. With `reconnect` it ends the connection half way, and the
    recorder must connect and subscribe again. Once the venue has sent the last frame it stops,
    closing the connection after that frame, and the recording stops there."""
    data = load_replay_data(served)
    schedule: list[TimelineEntry] = [*clean_schedule(data.frames)]
    if reconnect:
        half_way = data.frames[len(data.frames) // 2].offset_ns
        schedule.insert(len(schedule) // 2, Disconnect(half_way, "close", code=1001, reason="going away"))
    finished, done = asyncio.Event(), asyncio.Event()
    server = VenueServer(data, schedule=schedule, speed=SPEED, wire=wire_of(data), on_finished=lambda _: finished.set())

    def observe_client(event: ClientEvent) -> None:
        if isinstance(event, Disconnected) and finished.is_set():
            done.set()

    await server.start()
    try:
        recording = asyncio.ensure_future(
            record(_config(venue, server, output), stop=done, observe_client=observe_client)
        )
        await asyncio.wait(
            {recording, asyncio.ensure_future(finished.wait())}, timeout=WAIT_S, return_when=asyncio.FIRST_COMPLETED
        )
        assert finished.is_set(), "the fake venue served every frame"
    finally:
        await server.stop()
    summary = await asyncio.wait_for(recording, WAIT_S)
    assert summary.connections == 1 + reconnect and summary.snapshots == 0


@pytest.mark.parametrize(
    ("venue", "reconnect"),
    [
        ("bybit", True),
        ("okx", False),
        # Holds the second connection's snapshot at the seqId of the first one's last update
        # (tests/test_okx.py, the resubscribe snapshot opens no hole).
        ("okx", True),
    ],
)
def test_a_recording_of_the_fake_venue_replays_clean(tmp_path: Path, venue: str, reconnect: bool) -> None:
    served = write_synthetic_recording(tmp_path / "served", list(SYMBOLS[venue]), seconds=3, seed=2, venue=venue)
    output = tmp_path / "rec"
    asyncio.run(_record_served(venue, served, output, reconnect))

    events = list(Recording(output).iter_events())
    assert not any(e.kind in (EventKind.HTTP_REQUEST, EventKind.HTTP_RESPONSE) for e in events)
    opens = [e.conn_id for e in events if e.kind is EventKind.WS_OPEN]
    assert len(opens) == 1 + reconnect
    for conn_id in opens:
        mine = [e for e in events if e.conn_id == conn_id]
        assert mine[1].kind is EventKind.WS_SEND and b"subscribe" in mine[1].payload
        assert mine[2].kind is EventKind.WS_RECV and mine[2].stream is None, "the ack comes first"
        books = {e.stream for e in mine if e.kind is EventKind.WS_RECV and e.stream is not None}
        assert len(books) == 4, "each symbol's book and trades"
        first_book = next(e for e in mine if e.stream is not None and e.stream in books and b"snapshot" in e.payload)
        assert orjson.loads(first_book.payload)
    report = run_replay(ReplayRequest(scenario="clean", recording=output, speed=0))
    failed = [row["name"] for row in report["expectations"] if not row["passed"]]
    assert report["passed"], failed
    assert report["sync"]["divergent"] == 0


@pytest.mark.parametrize(
    ("venue", "symbol", "error"),
    [
        ("okx", "BTCUSDT", "'BTCUSDT' is not a symbol on okx (e.g. BTC-USDT)"),
        ("okx", "btc-usdt-swap", None),
        ("bybit", "BTC-USDT", "'BTC-USDT' is not a symbol on bybit (e.g. BTCUSDT)"),
    ],
)
def test_the_venue_decides_what_a_symbol_looks_like(tmp_path: Path, venue: str, symbol: str, error: str | None) -> None:
    def make() -> RecordConfig:
        return make_config(venue=venue, symbols=[symbol], ws_url=None, rest_url=None, seconds=1, output=tmp_path)

    if error is None:
        assert make().symbols == (symbol.upper(),)
    else:
        with pytest.raises(HarnessError, match=error.replace("(", r"\(").replace(")", r"\)")) as raised:
            make()
        assert "\n" not in str(raised.value)


def test_options_a_subscribing_venue_cannot_honour_are_refused(tmp_path: Path) -> None:
    def make(venue: str, **options: object) -> RecordConfig:
        return make_config(venue=venue, symbols=None, ws_url=None, rest_url=None, seconds=1, output=tmp_path, **options)  # type: ignore[arg-type]

    assert make("okx").symbols == ("BTC-USDT",) and make("bybit").symbols == ("BTCUSDT",)
    with pytest.raises(HarnessError, match="--book-ticker: harness record has no best bid/ask stream for bybit"):
        make("bybit", book_ticker=True)
    with pytest.raises(HarnessError, match="--stream: harness record takes no further streams on okx"):
        make("okx", extra_streams=["books5:BTC-USDT"])


def test_a_subscription_the_venue_refuses_is_one_error_line(tmp_path: Path) -> None:
    refusal = b'{"event":"error","msg":"Nonexistent instId: NOPE-USDT","code":"60018","connId":"1"}'

    async def venue(ws: ServerConnection) -> None:
        await ws.recv()
        await ws.send(refusal.decode())
        await ws.wait_closed()

    async def main() -> None:
        async with serve(venue, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            config = make_config(
                venue="okx", symbols=["nope-usdt"], ws_url=f"ws://127.0.0.1:{port}", rest_url=None, seconds=None,
                output=tmp_path / "rec",
            )  # fmt: skip
            await asyncio.wait_for(record(replace(config, fsync=False)), WAIT_S)

    with pytest.raises(HarnessError, match=r"the venue refused the subscription: .*Nonexistent instId") as raised:
        asyncio.run(main())
    assert "\n" not in str(raised.value)
    rows = list(Recording(tmp_path / "rec").iter_events())
    assert [e.kind for e in rows][:3] == [EventKind.WS_OPEN, EventKind.WS_SEND, EventKind.WS_RECV]
    assert rows[2].payload == refusal, "what the venue answered is kept"
