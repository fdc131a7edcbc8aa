"""OKX's wire for the fake venue (harness/venues/okx/wire.py), pure: paths, control messages and
their replies, the snapshot a new `books` subscriber gets, time shifting."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import orjson
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from harness.client import ReconnectingClient
from harness.client_state import AppKeepalive, ClientEvent, ConnectionOpened, Disconnected
from harness.synth.run import write_synthetic_recording
from harness.venues.binance_spot.wire import WIRE as BINANCE_SPOT_WIRE
from harness.venues.okx.dialect import DIALECT
from harness.venues.okx.oracle_rule import OkxOracleBooks, Verdict, read_book_frame
from harness.venues.okx.subscribe import KEEPALIVE, OkxSubscribe, resubscribe_books
from harness.venues.okx.wire import IDLE_CLOSE, WIRE, OkxWire
from harness.venues.wire import (
    ConnectionState,
    Control,
    ControlRejected,
    Heartbeat,
    HttpReply,
    IdleClose,
    Opened,
    Reply,
)
from replayer.reference_book import ReferenceBook
from replayer.replay_data import load_replay_data
from replayer.server import VenueServer
from replayer.venue_actions import CheckIdle, Close, Write
from replayer.venue_core import VenueCore
from tests.okx_helpers import books

STATE = ConnectionState(streams=(), framing="raw", connection_id=42)


class _Books:
    def __init__(self, **books: ReferenceBook) -> None:
        self._books = books

    def book(self, symbol: str) -> ReferenceBook | None:
        return self._books.get(symbol)


def test_one_public_path_that_subscribes_to_nothing_by_itself() -> None:
    assert WIRE.open_path("/ws/v5/public") == Opened((), "raw")
    refused = WIRE.open_path("/ws/v5/private")
    assert isinstance(refused, HttpReply) and refused.status == 404
    assert WIRE.is_rest("/api/v5/market/books?instId=BTC-USDT") and not WIRE.is_rest("/ws/v5/public")
    assert WIRE.heartbeat.server_ping_interval_s is None


def test_subscribe_is_acked_per_arg_and_ping_is_answered_pong() -> None:
    message = '{"op":"subscribe","args":[{"channel":"books","instId":"BTC-USDT"},{"channel":"trades","instId":"X-Y"}]}'
    parsed = WIRE.parse_control(message, STATE)
    assert isinstance(parsed, Control) and parsed.kind == "subscribe"
    assert parsed.streams == ("books:BTC-USDT", "trades:X-Y")
    replies = WIRE.render_control(parsed, STATE)
    assert [orjson.loads(r.payload)["arg"]["instId"] for r in replies] == ["BTC-USDT", "X-Y"]
    assert all(orjson.loads(r.payload)["event"] == "subscribe" for r in replies)
    assert {orjson.loads(r.payload)["connId"] for r in replies} == {"0000002a"}
    ping = WIRE.parse_control("ping", STATE)
    assert ping == Control("ping") and WIRE.render_control(ping, STATE) == [Reply(b"pong")]
    rejected = WIRE.parse_control('{"op":"subscribe"}', STATE)
    assert isinstance(rejected, ControlRejected) and orjson.loads(rejected.reply.payload)["code"] == "60012"
    assert orjson.loads(rejected.reply.payload)["connId"] == "0000002a", "errors name the connection too"


def test_a_new_books_subscriber_gets_the_venue_book_as_a_checksummed_snapshot() -> None:
    book = ReferenceBook()
    book.load(41, [(str(100 - i), "1") for i in range(450)], [(str(101 + i), "2") for i in range(30)])
    snapshot = WIRE.stream_snapshot("books:BTC-USDT", _Books(**{"BTC-USDT": book}), 1_700_000_000_123)
    assert snapshot is not None
    frame = read_book_frame(snapshot)
    assert frame is not None and frame.snapshot and frame.seq_id == 41 and len(frame.bids) == 400
    assert frame.ts_ms == 1_700_000_000_123
    oracle = OkxOracleBooks()
    assert oracle.feed(frame) is Verdict.SNAPSHOT
    update = read_book_frame(books(45, 41, bids=[("100", "0")]))
    assert update is not None and oracle.feed(update) is Verdict.APPLIED
    assert WIRE.stream_snapshot("trades:BTC-USDT", _Books(), 0) is None
    assert WIRE.stream_snapshot("books:ETH-USDT", _Books(), 0) is None
    assert WIRE.stream_snapshot("books:BTC-USDT", _Books(**{"BTC-USDT": ReferenceBook()}), 0) is None


def test_recorded_frames_go_out_as_recorded_and_times_shift_in_place() -> None:
    payload = books(5, 3, bids=[("1", "2")])
    assert WIRE.frame("books:BTC-USDT", payload, "raw") is payload
    assert WIRE.first_event_time_ms([b"pong", payload]) == 1_700_000_000_000
    shifted = WIRE.shift_times(payload, 250)
    assert shifted == payload.replace(b'"ts":"1700000000000"', b'"ts":"1700000000250"')
    assert WIRE.rest("/api/v5/market/books", {}, None) == HttpReply(404, b'{"code":"404","msg":"Not Found"}')  # type: ignore[arg-type]


def test_books5_and_bbo_tbt_are_derived_from_a_recorded_books_stream() -> None:
    recorded = ["books:BTC-USDT", "bbo-tbt:BTC-USDT", "trades:BTC-USDT"]
    assert WIRE.derived_streams(recorded) == {"books:BTC-USDT": ["books5:BTC-USDT"]}
    top = WIRE.aggregator("books5:BTC-USDT")
    snapshot = books(3, -1, action="snapshot", bids=[("10", "1")], asks=[("11", "1")])
    [message] = top.add(0, snapshot)
    assert orjson.loads(message)["data"][0]["seqId"] == 3
    [deeper] = top.add(0, books(4, 3, bids=[("5", "1")]))
    assert [level[0] for level in orjson.loads(deeper)["data"][0]["bids"]] == ["10", "5"]
    assert top.flush() == []


def test_the_fake_venue_speaks_okx_over_a_socket(tmp_path: Path) -> None:
    """Subscribe, an ack per arg, the recorded snapshot then linked, checksummed updates; `ping` -> `pong`."""
    recording = write_synthetic_recording(tmp_path / "okx", "BTC-USDT", seconds=3.0, seed=2, venue="okx")
    data = load_replay_data(recording)
    wire = DIALECT.wire()
    assert wire is not None

    async def session() -> tuple[list[bytes], bytes]:
        server = VenueServer(data, speed=0, wire=wire)
        await server.start()
        try:
            async with asyncio.timeout(20), connect(f"{server.ws_url}/ws/v5/public", max_size=None) as ws:
                await ws.send('{"op":"subscribe","args":[{"channel":"books","instId":"BTC-USDT"}]}')
                received = [_bytes(await ws.recv()) for _ in range(12)]
                await ws.send("ping")
                while (reply := _bytes(await ws.recv())) != b"pong":
                    pass
                return received, reply
        finally:
            await server.stop()

    received, pong = asyncio.run(session())
    assert orjson.loads(received[0])["event"] == "subscribe" and pong == b"pong"
    oracle = OkxOracleBooks()
    verdicts = [oracle.feed(frame) for payload in received[1:] if (frame := read_book_frame(payload)) is not None]
    assert verdicts[0] is Verdict.SNAPSHOT and set(verdicts[1:]) == {Verdict.APPLIED} and len(verdicts) == 11


def _bytes(message: str | bytes) -> bytes:
    return message if isinstance(message, bytes) else message.encode()


def test_a_connection_the_venue_hears_nothing_from_for_30_s_is_closed_with_4004(tmp_path: Path) -> None:
    """OKX's idle limit in the core, pure: any client message (a `ping`, a subscribe, even a refused one)
    restarts the 30 s; frames the venue pushes do not. A connection paused by a Stall is not the client's
    silence."""
    data = load_replay_data(write_synthetic_recording(tmp_path / "okx", "BTC-USDT", 2, seed=1, venue="okx"))
    core = VenueCore(data, WIRE)
    s = 1_000_000_000
    conn, opened = core.open("/ws/v5/public", None, 0, 0)
    assert CheckIdle(conn, 30 * s) in opened
    assert core.idle(conn, 30 * s - 1) == [CheckIdle(conn, 30 * s)], "a timer firing early looks again"
    core.receive(conn, "ping", 20 * s, 0)
    assert core.idle(conn, 30 * s) == [CheckIdle(conn, 50 * s)]
    core.receive(conn, '{"op":"nonsense"}', 45 * s, 0)
    assert core.idle(conn, 50 * s) == [CheckIdle(conn, 75 * s)]
    core.paused = True
    assert core.idle(conn, 80 * s) == [CheckIdle(conn, 110 * s)]
    core.paused = False
    closing = core.idle(conn, 110 * s)
    assert closing[-1] == Close(conn, 4004, "No data received in 30s", discard=True)
    assert core.clients[conn].close_cause == "idle" and core.idle(conn, 200 * s) == []
    # Venues without an idle limit never ask.
    spot = VenueCore(data, BINANCE_SPOT_WIRE)
    _, actions = spot.open("/ws", None, 0, 0)
    assert not any(isinstance(a, CheckIdle) for a in actions)


class _QuickIdleWire(OkxWire):
    """OKX's wire with its idle limit at 0.3 s, so the socket test waits on events, not on 30 s."""

    heartbeat = Heartbeat(None, None, IdleClose(0.3, IDLE_CLOSE.code, IDLE_CLOSE.reason))


def test_the_venue_closes_a_silent_client_and_our_keepalive_keeps_one_open(tmp_path: Path) -> None:
    """Over a socket: a client that subscribes and then only reads is closed with 4004 while frames still
    flow to it; our reconnecting client with OKX's keepalive (at a short interval) outlives many idle
    limits on one connection, each `ping` answered, and `send` resubscribes one instrument on it (a new
    snapshot follows), where with no connection open it sends nothing and says so."""
    data = load_replay_data(write_synthetic_recording(tmp_path / "okx", "BTC-USDT", 20, seed=1, venue="okx"))
    subscribe = OkxSubscribe(["books:BTC-USDT"])
    assert KEEPALIVE.message == "ping" and KEEPALIVE.interval_s < IDLE_CLOSE.after_s
    parts = DIALECT.subject_parts()
    assert parts.keepalive == KEEPALIVE and DIALECT.capture_policy().keepalive == KEEPALIVE

    async def session() -> tuple[int, str, int, list[ClientEvent], list[bytes]]:
        server = VenueServer(data, speed=1, wire=_QuickIdleWire())
        await server.start()
        try:
            async with asyncio.timeout(20):
                async with connect(f"{server.ws_url}/ws/v5/public") as ws:
                    await ws.send(subscribe.messages()[0])
                    frames = 0
                    with contextlib.suppress(ConnectionClosed):
                        async for _ in ws:
                            frames += 1
                    assert ws.close_code is not None and ws.close_reason is not None
                    code, reason = ws.close_code, ws.close_reason
                pongs, enough, snapshot_again = 0, asyncio.Event(), asyncio.Event()
                events: list[ClientEvent] = []
                after_resubscribing: list[bytes] = []

                def on_message(payload: bytes, *_: int) -> None:
                    nonlocal pongs
                    pongs += payload == b"pong"
                    if pongs == 12:
                        enough.set()
                    if enough.is_set() and payload != b"pong":
                        after_resubscribing.append(payload)
                        if b'"action":"snapshot"' in payload:
                            snapshot_again.set()

                client = ReconnectingClient(
                    f"{server.ws_url}/ws/v5/public", on_message, on_event=events.append, subscribe=subscribe,
                    keepalive=AppKeepalive("ping", 0.05),
                )  # fmt: skip
                assert not client.send(resubscribe_books("BTC-USDT")), "no connection yet"
                client.start()
                await enough.wait()
                assert client.send(resubscribe_books("BTC-USDT"))
                await snapshot_again.wait()
                await client.stop()
                return code, reason, frames, events, after_resubscribing
        finally:
            await server.stop()

    code, reason, frames, events, after_resubscribing = asyncio.run(session())
    assert (code, reason) == (4004, "No data received in 30s") and frames > 1
    assert sum(isinstance(e, ConnectionOpened) for e in events) == 1, "12 pings (0.6 s) on one connection"
    assert not any(isinstance(e, Disconnected) and e.code == 4004 for e in events)
    replies = [orjson.loads(p).get("event") for p in after_resubscribing if b'"event"' in p]
    assert replies == ["unsubscribe", "subscribe"]


def test_one_instrument_resubscribed_on_the_open_connection_gets_a_new_snapshot(tmp_path: Path) -> None:
    """How our subject recovers one OKX book (`SubjectParts.resubscribe`): unsubscribe and subscribe
    `books:X` on the open connection; the venue acks both and sends X's book at the current position,
    and the connection keeps its other instruments."""
    recording = write_synthetic_recording(tmp_path / "okx", "BTC-USDT,ETH-USDT", 2, seed=1, venue="okx")
    core = VenueCore(load_replay_data(recording), WIRE)
    conn, _ = core.open("/ws/v5/public", None, 0, 0)
    core.receive(conn, OkxSubscribe(["books:BTC-USDT", "books:ETH-USDT"]).messages()[0], 0, 0)
    for entry in core.schedule[:40]:
        core.entry(entry, 0)
    messages = DIALECT.subject_parts().resubscribe
    assert messages is not None
    unsubscribe, subscribe = messages("ETH-USDT")
    acked = core.receive(conn, unsubscribe, 1, 0)
    assert [orjson.loads(a.payload)["event"] for a in acked if isinstance(a, Write)] == ["unsubscribe"]
    written = [orjson.loads(a.payload) for a in core.receive(conn, subscribe, 2, 0) if isinstance(a, Write)]
    assert [w.get("event", w.get("action")) for w in written] == ["subscribe", "snapshot"]
    book = core.books.book("ETH-USDT")
    assert book is not None and written[1]["data"][0]["seqId"] == book.last_update_id > 0
    assert core.listening_to("books:BTC-USDT") == [conn] == core.listening_to("books:ETH-USDT")
