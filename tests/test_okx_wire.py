"""OKX's wire for the fake venue (harness/venues/okx/wire.py), pure: paths, control messages and
their replies, the snapshot a new `books` subscriber gets, time shifting."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
from websockets.asyncio.client import connect

from harness.synth.run import write_synthetic_recording
from harness.venues.okx.dialect import DIALECT
from harness.venues.okx.oracle_rule import OkxOracleBooks, Verdict, read_book_frame
from harness.venues.okx.wire import WIRE
from harness.venues.wire import ConnectionState, Control, ControlRejected, HttpReply, Opened, Reply
from replayer.reference_book import ReferenceBook
from replayer.replay_data import load_replay_data
from replayer.server import VenueServer
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
