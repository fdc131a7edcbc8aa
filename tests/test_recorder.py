"""The live recorder against a Binance-shaped server on loopback: bytes, order, holes, snapshots, stop."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import threading
from collections import Counter
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.http11 import Request

from harness.errors import HarnessError
from harness.venues.binance_spot import DIALECT as BINANCE_SPOT
from harness.venues.binance_spot.streams import stream_of
from recorder.capture import SnapshotNeeds, capture_url, normalize_symbols
from recorder.format import OPEN_SUFFIX, EventKind, RecordedEvent
from recorder.live import RecordConfig, RecordSummary, make_config, record
from recorder.segments import RecordingExistsError, RecordingWriter
from replayer.reader import Recording
from replayer.replay_data import load_replay_data
from replayer.server import VenueServer

REPO = Path(__file__).resolve().parent.parent
WAIT_S = 10.0


def depth(symbol: str, first: int, last: int, extra: str = "") -> bytes:
    return (
        f'{{"stream":"{symbol.lower()}@depth@100ms","data":{{"e":"depthUpdate","E":1700000000000,"s":"{symbol}",'
        f'"U":{first},"u":{last},"b":[["100.10","1.5"]],"a":[["100.20","0.00000000"]]{extra}}}}}'
    ).encode()


def trade(symbol: str, trade_id: int) -> bytes:
    # Spacing, key order and escapes a re-serializer would change; a raw é that must survive as UTF-8.
    return (
        f'{{"stream":"{symbol.lower()}@trade","data":{{"e":"trade", "E":1700000000001,"s":"{symbol}",'
        f'"t":{trade_id},"p":"100.10","q":"0.5","m":true,"note":"caf\\u00e9 café"}}}}'
    ).encode()


def script_frames(connection: int) -> list[bytes]:
    base = 1000 * (connection + 1)
    return [
        depth("BTCUSDT", base, base + 4),
        trade("BTCUSDT", base),
        depth("ETHUSDT", base + 10, base + 12),
        depth("BTCUSDT", base + 5, base + 9, extra=' ,"pad": "x"'),
        trade("ETHUSDT", base + 1),
    ]


@dataclass
class FakeBinance:
    """Per WebSocket connection: send the scripted frames, wait for the test's go, then end as told."""

    endings: list[tuple[str, int, str]]
    stale_first: set[str] = field(default_factory=set)
    release: list[asyncio.Event] = field(default_factory=list)
    served: list[list[bytes]] = field(default_factory=list)
    rest_bodies: list[tuple[str, bytes]] = field(default_factory=list)
    rest_served: asyncio.Event = field(default_factory=asyncio.Event)
    ws_paths: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.release = [asyncio.Event() for _ in self.endings]

    def process_request(self, connection: ServerConnection, request: Request):
        if not request.path.startswith("/api/v3/depth"):
            return None
        query = parse_qs(urlsplit(request.path).query)
        symbol = query["symbol"][0]
        asked = sum(1 for s, _ in self.rest_bodies if s == symbol)
        last = 1 if (symbol in self.stale_first and asked == 0) else 10**9 + asked
        body = (
            f'{{"lastUpdateId":{last},"bids":[["100.10","1.5"]],"asks":[["100.20","2"]],"limit":{query["limit"][0]}}}'
        )
        self.rest_bodies.append((symbol, body.encode()))
        self.rest_served.set()
        return connection.respond(HTTPStatus.OK, body)

    async def handler(self, ws: ServerConnection) -> None:
        index = len(self.served)
        assert ws.request is not None
        self.ws_paths.append(ws.request.path)
        frames = script_frames(index) if index < len(self.endings) else []
        self.served.append(frames)
        for frame in frames:
            await ws.send(frame.decode())
        mode, code, reason = self.endings[index] if index < len(self.endings) else ("hold", 0, "")
        if mode == "hold":
            await ws.wait_closed()
            return
        await self.release[index].wait()
        if mode == "abort":
            ws.transport.abort()
        else:
            await ws.close(code, reason)


def config_for(port: int, output: Path, **overrides: Any) -> RecordConfig:
    base: dict[str, Any] = dict(
        venue="binance-spot",
        symbols=("BTCUSDT", "ETHUSDT"),
        ws_url=f"ws://127.0.0.1:{port}",
        rest_url=f"http://127.0.0.1:{port}",
        output=output,
        backoff_initial_s=0.01,
        backoff_cap_s=0.05,
        snapshot_retry_s=0.01,
        fsync=False,
        seed=1,
    )
    base.update(overrides)
    return RecordConfig(**base)


def events_of(path: Path) -> list[RecordedEvent]:
    return list(Recording(path).iter_events())


def test_frames_are_recorded_byte_identical_with_drops_and_snapshots(tmp_path: Path) -> None:
    fake = FakeBinance(
        endings=[("abort", 0, ""), ("close", 1001, "going away"), ("hold", 0, "")], stale_first={"BTCUSDT"}
    )
    output = tmp_path / "rec"
    # BTCUSDT: stale then fresh on the first connection, once on each later one; ETHUSDT once per connection.
    expected_responses = 2 + 1 + 1 + 3

    async def main() -> None:
        stop = asyncio.Event()
        ws_conns: list[int] = []
        frames: Counter[int] = Counter()
        responses = 0

        def observe(kind: EventKind, conn_id: int, stream: str | None) -> None:
            nonlocal responses
            if kind is EventKind.WS_OPEN:
                ws_conns.append(conn_id)
            elif kind is EventKind.WS_RECV:
                frames[conn_id] += 1
                index = ws_conns.index(conn_id)
                if frames[conn_id] == len(script_frames(index)):
                    fake.release[index].set()
            elif kind is EventKind.HTTP_RESPONSE:
                responses += 1
            if len(ws_conns) == 3 and frames[ws_conns[2]] == 5 and responses == expected_responses:
                stop.set()

        async with serve(fake.handler, "127.0.0.1", 0, process_request=fake.process_request) as server:
            port = server.sockets[0].getsockname()[1]
            summary = await asyncio.wait_for(record(config_for(port, output), stop=stop, observe=observe), WAIT_S)
        assert summary.frames == 15
        assert summary.reconnects == 2
        assert summary.close_codes == [1006, 1001, 1000]

    asyncio.run(main())

    assert not list(output.glob(f"*{OPEN_SUFFIX}"))
    events = events_of(output)
    assert [e.seq for e in events] == list(range(len(events)))
    monos = [e.recv_mono_ns for e in events]
    assert monos == sorted(monos)

    ws_url = capture_url(BINANCE_SPOT, "ws://127.0.0.1:0", ("BTCUSDT", "ETHUSDT")).split("/stream", 1)[1]
    assert fake.ws_paths == ["/stream" + ws_url] * 3
    opens = [e for e in events if e.kind is EventKind.WS_OPEN]
    assert len(opens) == 3
    for index, opened in enumerate(opens):
        assert opened.url is not None and opened.url.endswith(fake.ws_paths[0]) and opened.payload == b""
        own = [e for e in events if e.conn_id == opened.conn_id]
        assert own[0].kind is EventKind.WS_OPEN and own[-1].kind is EventKind.WS_CLOSE
        received = [e for e in own if e.kind is EventKind.WS_RECV]
        assert [e.payload for e in received] == fake.served[index]
        assert [e.stream for e in received] == [orjson.loads(p)["stream"] for p in fake.served[index]]
    closes = [e for e in events if e.kind is EventKind.WS_CLOSE]
    assert [c.status for c in closes] == [1006, 1001, 1000]
    assert closes[1].reason == "going away"

    requests = [e for e in events if e.kind is EventKind.HTTP_REQUEST]
    responses = [e for e in events if e.kind is EventKind.HTTP_RESPONSE]
    assert len(requests) == len(responses) == expected_responses
    assert all(r.reason == "GET" and r.payload == b"" for r in requests)
    by_conn = {r.conn_id: r for r in requests}
    assert len(by_conn) == len(requests)
    assert not set(by_conn) & {o.conn_id for o in opens}
    for response in responses:
        request = by_conn[response.conn_id]
        assert request.seq < response.seq and request.url == response.url
        assert response.status == 200 and response.reason == "OK"
    assert sorted(r.payload for r in responses) == sorted(body for _, body in fake.rest_bodies)
    btc = [r for r in responses if "symbol=BTCUSDT" in (r.url or "")]
    assert [orjson.loads(r.payload)["lastUpdateId"] < 1000 for r in btc] == [True, False, False, False]
    assert {(r.url or "").split("/api/", 1)[1] for r in requests} == {
        "v3/depth?symbol=BTCUSDT&limit=5000",
        "v3/depth?symbol=ETHUSDT&limit=5000",
    }


def test_seconds_stops_and_seals(tmp_path: Path) -> None:
    fake = FakeBinance(endings=[("hold", 0, "")])
    output = tmp_path / "rec"

    async def main() -> RecordSummary:
        async with serve(fake.handler, "127.0.0.1", 0, process_request=fake.process_request) as server:
            port = server.sockets[0].getsockname()[1]
            config = config_for(port, output, symbols=("BTCUSDT",), seconds=0.2)
            return await asyncio.wait_for(record(config), WAIT_S)

    summary = asyncio.run(main())
    assert summary.segments and all(p.suffix == ".parquet" for p in summary.segments)
    assert sorted(output.iterdir()) == summary.segments
    events = events_of(output)
    assert events[0].kind is EventKind.WS_OPEN
    closes = [e for e in events if e.kind is EventKind.WS_CLOSE]
    assert [c.status for c in closes] == [1000]
    assert Recording(output).meta.symbols == ("BTCUSDT",)
    assert Recording(output).meta.venue == "binance-spot"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unreachable_first_connect_is_a_one_line_error_and_leaves_no_folder(tmp_path: Path) -> None:
    output = tmp_path / "rec"
    with pytest.raises(HarnessError, match=r"cannot connect to ws://127\.0\.0\.1") as info:
        asyncio.run(record(config_for(free_port(), output)))
    assert "\n" not in str(info.value)
    assert not output.exists()


def test_existing_output_is_refused_before_connecting(tmp_path: Path) -> None:
    output = tmp_path / "rec"
    output.mkdir()
    (output / "keep").write_bytes(b"x")
    with pytest.raises(RecordingExistsError):
        asyncio.run(record(config_for(free_port(), output)))
    assert sorted(p.name for p in output.iterdir()) == ["keep"]


def test_config_defaults_to_the_live_venue_and_rejects_bad_input(tmp_path: Path) -> None:
    config = make_config(venue="binance-spot", symbols=["btcusdt", " ETHUSDT"], ws_url=None, rest_url=None,
                         seconds=None, output=tmp_path / "x")  # fmt: skip
    assert config.symbols == ("BTCUSDT", "ETHUSDT")
    assert capture_url(BINANCE_SPOT, config.ws_url, config.symbols) == (
        "wss://stream.binance.com:9443/stream?streams=btcusdt@depth@100ms/btcusdt@trade/ethusdt@depth@100ms/ethusdt@trade"
    )
    assert config.rest_url == "https://api.binance.com"
    with pytest.raises(HarnessError, match="unknown venue"):
        make_config(venue="nope", symbols=["BTCUSDT"], ws_url=None, rest_url=None, seconds=None, output=tmp_path)
    with pytest.raises(HarnessError, match="no symbols"):
        normalize_symbols(BINANCE_SPOT, [" ", ""])
    with pytest.raises(HarnessError, match=r"'BTC/USDT' is not a symbol on binance-spot \(e\.g\. BTCUSDT\)"):
        normalize_symbols(BINANCE_SPOT, ["BTC/USDT"])


def test_headers_streams_and_watchdog_from_the_command_line(tmp_path: Path) -> None:
    from harness.cli import WATCHDOG_DEFAULT_S
    from recorder.live import WATCHDOG_S

    assert WATCHDOG_DEFAULT_S == WATCHDOG_S
    key = "k" * 64
    config = make_config(venue="binance-spot", symbols=["BTCUSDT"], ws_url=None, rest_url=None, seconds=None,
                         output=tmp_path / "x", headers=[f"X-MBX-APIKEY: {key}"], extra_streams=[" lk123456 "],
                         watchdog_s=5.0)  # fmt: skip
    assert config.headers == (("X-MBX-APIKEY", key),)
    assert config.extra_streams == ("lk123456",)
    assert config.watchdog_s == 5.0
    assert capture_url(BINANCE_SPOT, "ws://h", config.symbols, extra_streams=config.extra_streams).endswith("/lk123456")
    for bad in (key, f"X MBX: {key}", "X-MBX-APIKEY:", f"A: {key}\r\nB: c"):
        with pytest.raises(HarnessError, match="expected 'Name: value'") as info:
            make_config(venue="binance-spot", symbols=["BTCUSDT"], ws_url=None, rest_url=None, seconds=None,
                        output=tmp_path / "x", headers=[bad])  # fmt: skip
        assert key not in str(info.value)
    with pytest.raises(HarnessError, match="cannot be told from data"):
        make_config(venue="binance-spot", symbols=["BTCUSDT"], ws_url=None, rest_url=None, seconds=None,
                    output=tmp_path / "x", headers=["Authorization: abc"])  # fmt: skip


def test_stream_names_and_snapshot_rule() -> None:
    assert stream_of(depth("BTCUSDT", 1, 2)) == "btcusdt@depth@100ms"
    assert stream_of(b'{"result":null,"id":1}') is None
    assert stream_of(b'{ "stream" : "x@trade", "data": {}}') == "x@trade"
    assert stream_of(b"not json") is None
    needs = SnapshotNeeds.for_symbols(BINANCE_SPOT, ("BTCUSDT",))
    assert needs.on_frame("btcusdt@trade", trade("BTCUSDT", 1)) is None
    assert needs.on_frame("btcusdt@depth@100ms", depth("BTCUSDT", 50, 60)) == "BTCUSDT"
    assert needs.on_frame("btcusdt@depth@100ms", depth("BTCUSDT", 61, 70)) is None
    assert not needs.fresh_enough("BTCUSDT", 200, b'{"lastUpdateId":49,"bids":[],"asks":[]}')
    assert needs.fresh_enough("BTCUSDT", 200, b'{"lastUpdateId":50,"bids":[],"asks":[]}')
    assert not needs.fresh_enough("BTCUSDT", 429, b"{}")
    assert not needs.fresh_enough("BTCUSDT", 503, b"{}")
    assert needs.fresh_enough("BTCUSDT", 400, b'{"code":-1121}')


def test_cli_record_stops_cleanly_on_sigint(tmp_path: Path) -> None:
    fake = FakeBinance(endings=[("hold", 0, "")])
    output = tmp_path / "rec"

    async def main() -> tuple[int | None, bytes]:
        async with serve(fake.handler, "127.0.0.1", 0, process_request=fake.process_request) as server:
            port = server.sockets[0].getsockname()[1]
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "harness.cli", "record", "--symbols", "BTCUSDT",
                "--ws-url", f"ws://127.0.0.1:{port}", "--rest-url", f"http://127.0.0.1:{port}", "-o", str(output),
                stderr=asyncio.subprocess.PIPE, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
            )  # fmt: skip
            # The snapshot request comes after the first depth frame reached the recorder.
            await asyncio.wait_for(fake.rest_served.wait(), WAIT_S)
            proc.send_signal(signal.SIGINT)
            _, stderr = await asyncio.wait_for(proc.communicate(), WAIT_S)
            return proc.returncode, stderr

    returncode, stderr = asyncio.run(main())
    assert returncode == 0, stderr.decode()
    summary = stderr.decode().strip().splitlines()[-1]
    assert summary.startswith("recorded ") and str(output) in summary
    assert not list(output.glob(f"*{OPEN_SUFFIX}"))
    kinds = Counter(e.kind for e in events_of(output))
    assert kinds[EventKind.WS_RECV] >= 1
    assert summary.startswith(f"recorded {kinds[EventKind.WS_RECV]} frames")
    assert kinds[EventKind.WS_OPEN] == kinds[EventKind.WS_CLOSE] == 1
    assert kinds[EventKind.HTTP_RESPONSE] == 1


def test_cli_unknown_venue_is_one_error_line(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from harness.cli import app

    result = CliRunner().invoke(app, ["record", "--venue", "kraken", "-o", str(tmp_path / "r")])
    assert result.exit_code == 2
    assert "unknown venue 'kraken'" in result.output
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize(
    ("fixture_name", "book_ticker"),
    [
        ("binance_spot_btcusdt_synth", False),
        ("binance_spot_multi_synth", False),
        ("binance_spot_btcusdt_real_60s", True),
        ("binance_usdm_btcusdt_real_30s", True),
    ],
)
def test_recording_from_harness_serve_is_byte_identical_to_the_served_recording(
    tmp_path: Path, fixture_name: str, book_ticker: bool
) -> None:
    fixture = REPO / "fixtures" / fixture_name
    served = load_replay_data(fixture)
    output = tmp_path / "rec"

    async def main() -> None:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "harness.cli", "serve", "--recording", str(fixture), "--port", "0", "--speed", "0",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=REPO,
        )  # fmt: skip
        assert proc.stdout is not None and proc.stderr is not None
        try:
            urls: dict[str, str] = {}
            while len(urls) < 2:
                line = (await asyncio.wait_for(proc.stdout.readline(), WAIT_S)).decode()
                assert line, (await proc.stderr.read()).decode()
                label, _, rest = line.partition(":")
                if label in ("websocket", "rest"):
                    urls[label] = rest.split()[0]
            stop = asyncio.Event()
            received = 0

            def observe(kind: EventKind, conn_id: int, stream: str | None) -> None:
                nonlocal received
                received += kind is EventKind.WS_RECV
                if received == len(served.frames):
                    stop.set()

            config = config_for(
                0,
                output,
                venue=served.dialect.name,
                symbols=served.symbols,
                ws_url=urls["websocket"],
                rest_url=urls["rest"],
                book_ticker=book_ticker,
            )
            await asyncio.wait_for(record(config, stop=stop, observe=observe), WAIT_S * 3)
        finally:
            proc.send_signal(signal.SIGINT)
            await asyncio.wait_for(proc.communicate(), WAIT_S)

    asyncio.run(main())
    events = events_of(output)
    frames = [e for e in events if e.kind is EventKind.WS_RECV]
    assert [e.payload for e in frames] == [f.payload for f in served.frames]
    assert [e.stream for e in frames] == [f.stream for f in served.frames]
    assert ("btcusdt@bookTicker" in {e.stream for e in frames}) is book_ticker
    assert {e.conn_id for e in frames} == {events[0].conn_id}
    responses = [e for e in events if e.kind is EventKind.HTTP_RESPONSE]
    # The fake venue answers from the book at the replay position, which is past the first depth frame
    # the recorder saw, so one fetch per symbol is enough and its lastUpdateId reaches that frame's U.
    assert [r.status for r in responses] == [200] * len(served.symbols)
    for response in responses:
        symbol = (response.url or "").split("symbol=")[1].split("&")[0]
        first_depth = next(e for e in frames if e.stream == served.dialect.capture_policy().streams([symbol], False)[0])
        assert orjson.loads(response.payload)["lastUpdateId"] >= orjson.loads(first_depth.payload)["data"]["U"]


def test_http_get_decodes_chunked_and_length_bodies_byte_exact() -> None:
    from harness.http import HttpError, http_get

    body = b'{"lastUpdateId":7,"bids":[["1.0","2"]],"asks":[]}\xc3\xa9'
    replies = [
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        + b"".join(b"%x;ext=1\r\n%s\r\n" % (len(part), part) for part in (body[:10], body[10:]))
        + b"0\r\nX-Trailer: 1\r\n\r\n",
        b"HTTP/1.1 429 Too Many Requests\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body),
        b"HTTP/1.0 200 OK\r\n\r\n" + body,
        b"garbage\r\n\r\n",
    ]
    requests: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        requests.append(await reader.readuntil(b"\r\n\r\n"))
        writer.write(replies[len(requests) - 1])
        await writer.drain()
        writer.close()

    async def main() -> list:
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        url = f"http://127.0.0.1:{port}/api/v3/depth?symbol=BTCUSDT&limit=5"
        async with server:
            results = [await http_get(url, user_agent="t") for _ in range(3)]
            with pytest.raises(HttpError, match="malformed"):
                await http_get(url, user_agent="t")
        with pytest.raises(HttpError):
            await http_get(url, user_agent="t")
        return results

    results = asyncio.run(main())
    with pytest.raises(ValueError, match="line break"):
        asyncio.run(http_get("http://127.0.0.1:1/x", user_agent="t", headers=[("X-MBX-APIKEY", "k\r\nHost: evil")]))
    assert [(r.status, r.reason, r.body) for r in results] == [
        (200, "OK", body),
        (429, "Too Many Requests", body),
        (200, "OK", body),
    ]
    assert requests[0].startswith(b"GET /api/v3/depth?symbol=BTCUSDT&limit=5 HTTP/1.1\r\nHost: 127.0.0.1:")


def test_unreachable_rest_on_first_snapshot_is_an_error_after_sealing(tmp_path: Path) -> None:
    fake = FakeBinance(endings=[("hold", 0, "")])
    output = tmp_path / "rec"

    async def main() -> None:
        async with serve(fake.handler, "127.0.0.1", 0, process_request=fake.process_request) as server:
            port = server.sockets[0].getsockname()[1]
            config = config_for(port, output, symbols=("BTCUSDT",), rest_url=f"http://127.0.0.1:{free_port()}")
            await asyncio.wait_for(record(config), WAIT_S)

    with pytest.raises(HarnessError, match=r"cannot fetch http://127\.0\.0\.1:\d+/api/v3/depth"):
        asyncio.run(main())
    events = events_of(output)
    assert not list(output.glob(f"*{OPEN_SUFFIX}"))
    response = next(e for e in events if e.kind is EventKind.HTTP_RESPONSE)
    assert response.status is None and response.reason
    assert events[-1].kind is EventKind.WS_CLOSE


def test_a_disk_that_falls_behind_stops_the_recording_and_keeps_everything_received(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeBinance(endings=[("hold", 0, "")])
    output = tmp_path / "rec"
    disk_free = threading.Event()
    extend = RecordingWriter.extend

    def stuck_extend(self: RecordingWriter, *args: Any, **kwargs: Any) -> None:
        disk_free.wait()
        extend(self, *args, **kwargs)

    monkeypatch.setattr(RecordingWriter, "extend", stuck_extend)
    observed: list[EventKind] = []

    async def main() -> None:
        stop = asyncio.Event()
        async with serve(fake.handler, "127.0.0.1", 0, process_request=fake.process_request) as server:
            port = server.sockets[0].getsockname()[1]
            # Two depth frames are over 200 bytes: the second one overflows the backlog.
            config = config_for(port, output, symbols=("BTCUSDT",), max_backlog_bytes=200)
            recording = asyncio.ensure_future(record(config, stop=stop, observe=lambda kind, *_: observed.append(kind)))
            await stop.wait()
            disk_free.set()
            await asyncio.wait_for(recording, WAIT_S)

    with pytest.raises(HarnessError, match=r"^the disk is not keeping up: more than 0\.000190735 MiB") as failure:
        asyncio.run(main())
    assert str(output) in str(failure.value) and "\n" not in str(failure.value)
    # Without the limit this recording would never end (the server holds the connection open).
    assert observed.count(EventKind.WS_RECV) >= 2
    events = events_of(output)
    assert not list(output.glob(f"*{OPEN_SUFFIX}"))
    assert [e.kind for e in events] == observed
    assert observed.count(EventKind.WS_CLOSE) == 1


def test_a_symbol_the_venue_does_not_list_is_an_error_before_anything_is_recorded(tmp_path: Path) -> None:
    data = load_replay_data(REPO / "fixtures" / "binance_spot_btcusdt_synth")
    output = tmp_path / "rec"

    async def main() -> None:
        server = VenueServer(data, speed=0)
        await server.start()
        try:
            await record(config_for(server.port, output, symbols=("BTCUSDT", "NOPE"), seconds=5.0))
        finally:
            await server.stop()

    with pytest.raises(
        HarnessError, match=r"the venue does not list NOPE \(http://127\.0\.0\.1:\d+/api/v3/exchangeInfo"
    ):
        asyncio.run(main())
    assert not output.exists()


def test_a_rate_limited_snapshot_is_fetched_again_after_its_retry_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeBinance(endings=[("hold", 0, "")])
    answered = fake.process_request
    refusals = [
        (HTTPStatus.TOO_MANY_REQUESTS, "7"),
        (HTTPStatus.SERVICE_UNAVAILABLE, None),
    ]

    def process_request(connection: ServerConnection, request: Request):
        if request.path.startswith("/api/v3/depth") and refusals:
            status, retry_after = refusals.pop(0)
            response = connection.respond(status, '{"code":-1003,"msg":"Too many requests."}')
            if retry_after is not None:
                response.headers["Retry-After"] = retry_after
            return response
        return answered(connection, request)

    waits: list[float] = []

    async def no_wait(self: object, seconds: float) -> bool:
        waits.append(seconds)
        return False

    monkeypatch.setattr("recorder.live._Recorder._stopped_within", no_wait)
    output = tmp_path / "rec"

    async def main() -> None:
        stop = asyncio.Event()

        def observe(kind: EventKind, conn_id: int, stream: str | None) -> None:
            if kind is EventKind.HTTP_RESPONSE and not refusals:
                stop.set()

        async with serve(fake.handler, "127.0.0.1", 0, process_request=process_request) as server:
            port = server.sockets[0].getsockname()[1]
            config = config_for(port, output, symbols=("BTCUSDT",))
            await asyncio.wait_for(record(config, stop=stop, observe=observe), WAIT_S)

    asyncio.run(main())
    statuses = [e.status for e in events_of(output) if e.kind is EventKind.HTTP_RESPONSE]
    assert statuses[:3] == [429, 503, 200]
    # After the 429 the recorder waits at least its Retry-After; after the 503, only its own backoff.
    assert waits[0] >= 7 and waits[1] < 7
