"""No secret reaches a recording: the redactor's rules, then an authenticated session recorded for real.

The end-to-end test serves, from the fake venue, the bundled fixture plus a user-data stream named by a
listen key whose events carry the key and an echoed API key; the recorder connects with an API key
header and a bearer token. Afterwards every column of every segment is read back (decompressed) and
the raw file bytes are searched for each secret.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from websockets.asyncio.server import ServerConnection
from websockets.http11 import Request, Response

from harness.replay import BUNDLED_FIXTURE
from recorder.format import EventKind, RecordedEvent
from recorder.live import RecordConfig, record
from recorder.redaction import REDACTED, SENSITIVE_HEADERS, SENSITIVE_NAMES, Redactor
from replayer.reader import Recording
from replayer.replay_data import build_replay_data, load_replay_data
from replayer.server import VenueServer

API_KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
SECRET_KEY = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
LISTEN_KEY = "pqia91ma19a5s61cv6a81va65sdf19v8a65a1a5s61cv6a81va65sdf19v8a65a1"
BEARER = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJyZWNvcmRlciJ9.c2lnbmF0dXJlLXZhbHVl"
SIGNATURE = "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"
SECRETS = (API_KEY, SECRET_KEY, LISTEN_KEY, BEARER, SIGNATURE)


def test_known_secrets_and_telling_shapes_are_redacted_everywhere() -> None:
    redact = Redactor([API_KEY, LISTEN_KEY])
    url = f"https://api.binance.com/api/v3/account?timestamp=1&signature={SIGNATURE}&recvWindow=5000"
    assert (
        redact.text(url) == f"https://api.binance.com/api/v3/account?timestamp=1&signature={REDACTED}&recvWindow=5000"
    )
    assert redact.text(f"wss://h/ws/{LISTEN_KEY}") == f"wss://h/ws/{REDACTED}"
    assert redact.text(f"http://h/x?apiKey={SECRET_KEY}&listenKey=abcdef") == (
        f"http://h/x?apiKey={REDACTED}&listenKey={REDACTED}"
    )
    assert redact.text(f"refused: Authorization: Bearer {BEARER}") == f"refused: Authorization: {REDACTED}"
    assert redact.text(f"token was Bearer {BEARER}") == f"token was Bearer {REDACTED}"
    assert redact.text(f"X-MBX-APIKEY: {SECRET_KEY}") == f"X-MBX-APIKEY: {REDACTED}"
    payload = f'{{"e":"listenKeyExpired","E":1,"listenKey":"{SECRET_KEY}","k":"{API_KEY}"}}'.encode()
    assert redact.payload(payload) == (
        f'{{"e":"listenKeyExpired","E":1,"listenKey":"{REDACTED}","k":"{REDACTED}"}}'.encode()
    )
    # Market data is left alone, as the same object: no copy on the hot path.
    frame = b'{"stream":"btcusdt@trade","data":{"e":"trade","p":"100.1","q":"0.5"}}'
    assert redact.payload(frame) is frame
    market = pa.array([frame, b'{"stream":"btcusdt@depth@100ms","data":{"U":1}}'], pa.binary())
    assert redact.payloads(market) is market
    assert redact.payloads(pa.array([frame, payload], pa.binary())).to_pylist() == [frame, redact.payload(payload)]
    assert redact.text("btcusdt@depth@100ms") == "btcusdt@depth@100ms"
    # Redacting twice changes nothing more.
    assert redact.payload(redact.payload(payload)) == redact.payload(payload)
    with pytest.raises(ValueError, match="cannot be told from data"):
        Redactor(["abc"])


SECRET_CHARS = st.characters(whitelist_categories=("Lu", "Ll", "Nd"), max_codepoint=127) | st.sampled_from("-_.+/=")


@settings(max_examples=200, deadline=None)
@given(
    secret=st.text(SECRET_CHARS, min_size=8, max_size=64),
    before=st.binary(max_size=80),
    after=st.binary(max_size=80),
    named=st.sampled_from(["signature", "apiKey", "listenKey", "token"]),
)
def test_a_secret_never_survives_whatever_surrounds_it(secret: str, before: bytes, after: bytes, named: str) -> None:
    """Known or not, a secret is gone: a known one anywhere, an unknown one under a telling name."""
    known = Redactor([secret]).payload(before + secret.encode() + after)
    assert secret.encode() not in known
    assert Redactor([secret]).text(f"{before!r}{secret}{after!r}").count(secret) == 0
    value = secret.replace('"', "").replace("\\", "")
    as_member = Redactor().payload(b'{"%s":"%s"}' % (named.encode(), value.encode()))
    assert value.encode() not in as_member.split(b":", 1)[1]
    in_query = Redactor().text(f"https://h/p?x=1&{named}={value}&y=2")
    assert in_query == f"https://h/p?x=1&{named}={REDACTED}&y=2"


WORDS = st.sampled_from([*SENSITIVE_NAMES, *SENSITIVE_HEADERS, "bearer"])


@st.composite
def payload_pieces(draw: st.DrawFn, secrets: list[str]) -> bytes:
    """Bytes around trigger words in mixed case, almost-words, known secrets and non-ASCII bytes."""
    pieces = []
    for _ in range(draw(st.integers(0, 6))):
        kind = draw(st.integers(0, 4))
        if kind == 0:
            pieces.append(draw(st.binary(max_size=20)))
        elif kind in (1, 2):
            word = draw(WORDS)
            flips = draw(st.lists(st.booleans(), min_size=len(word), max_size=len(word)))
            cased = "".join(c.upper() if flip else c for c, flip in zip(word, flips, strict=True))
            if kind == 2:  # cut short, or with a byte inside: not a trigger, unless the rest makes one
                at = draw(st.integers(0, len(cased)))
                cased = cased[:at] + draw(st.sampled_from(["", "\u00e9", "_", "0"])) + cased[at + 1 :]
            pieces.append(cased.encode() + draw(st.sampled_from([b"", b"=v1", b'":"v2"', b": v3", b" v4"])))
        elif kind == 3 and secrets:
            pieces.append(draw(st.sampled_from(secrets)).encode())
        else:
            pieces.append(draw(st.sampled_from([b"\xe9", b"\xc3\xa9", b"\x00", b"\xff", b'{"stream":"a@b"}'])))
    return b"".join(pieces)


@settings(max_examples=200, deadline=None)
@given(data=st.data(), secrets=st.lists(st.text(min_size=4, max_size=12), max_size=3))
def test_a_batch_is_redacted_exactly_as_each_payload_alone(data: st.DataObject, secrets: list[str]) -> None:
    """The writer thread's one pass over a batch finds the same values as `payload`'s own search."""
    redact = Redactor(secrets)
    values = data.draw(st.lists(payload_pieces(secrets), max_size=8))
    column = pa.array(values, pa.binary())
    expected = [redact.payload(value) for value in values]
    redacted = redact.payloads(column)
    assert redacted.to_pylist() == expected


def test_config_names_its_own_secrets() -> None:
    config = RecordConfig(
        venue="binance-spot",
        symbols=("BTCUSDT",),
        ws_url="ws://127.0.0.1:1",
        rest_url="http://127.0.0.1:1",
        output=Path("unused"),
        headers=(("X-MBX-APIKEY", API_KEY),),
        extra_streams=(LISTEN_KEY, "ethusdt@trade"),
        secrets=(SECRET_KEY,),
    )
    redact = config.redactor()
    assert redact.text(f"{API_KEY} {LISTEN_KEY} {SECRET_KEY} ethusdt@trade") == (
        f"{REDACTED} {REDACTED} {REDACTED} ethusdt@trade"
    )


class HeaderKeepingVenue(VenueServer):
    """The fake venue, keeping the headers of every handshake and REST request it was sent."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.request_headers: list[tuple[str, dict[str, str]]] = []

    async def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        self.request_headers.append((request.path, {k.lower(): v for k, v in request.headers.raw_items()}))
        return await super()._process_request(connection, request)


def user_data_events(events: list[RecordedEvent]) -> list[RecordedEvent]:
    """The fixture's events with user-data frames on the listen-key stream woven in after every 50th frame."""
    woven: list[RecordedEvent] = []
    frames = 0
    for event in events:
        woven.append(event)
        if event.kind is EventKind.WS_RECV:
            frames += 1
            if frames % 50 == 0:
                payload = (
                    f'{{"stream":"{LISTEN_KEY}","data":{{"e":"outboundAccountPosition","E":{frames},'
                    f'"echo":"Authorization: Bearer {BEARER}","apiKey":"{API_KEY}",'
                    f'"request":"/api/v3/order?signature={SIGNATURE}","listenKey":"{LISTEN_KEY}"}}}}'
                ).encode()
                woven.append(replace(event, stream=LISTEN_KEY, payload=payload))
    return woven


def test_an_authenticated_session_leaves_no_secret_in_the_recording(tmp_path: Path) -> None:
    fixture = Recording(BUNDLED_FIXTURE)
    data = build_replay_data(user_data_events(list(fixture.iter_events())), fixture.symbols)
    user_frames = sum(1 for f in data.frames if f.stream == LISTEN_KEY)
    assert user_frames > 10
    output = tmp_path / "rec"

    async def main() -> HeaderKeepingVenue:
        server = HeaderKeepingVenue(data, speed=0)
        await server.start()
        stop = asyncio.Event()
        received = 0

        def observe(kind: EventKind, conn_id: int, stream: str | None) -> None:
            nonlocal received
            received += kind is EventKind.WS_RECV
            if received == len(data.frames):
                stop.set()

        config = RecordConfig(
            venue="binance-spot",
            symbols=fixture.symbols,
            ws_url=server.ws_url,
            rest_url=server.rest_url,
            output=output,
            fsync=False,
            seed=1,
            headers=(("X-MBX-APIKEY", API_KEY), ("Authorization", f"Bearer {BEARER}")),
            extra_streams=(LISTEN_KEY,),
            secrets=(SECRET_KEY,),
        )
        try:
            await asyncio.wait_for(record(config, stop=stop, observe=observe), 60)
        finally:
            await server.stop()
        return server

    server = asyncio.run(main())
    # The secrets were in play: sent with the handshake and with every REST request, and served back.
    paths = [path for path, _ in server.request_headers]
    assert any(path.startswith("/stream?") and LISTEN_KEY in path for path in paths)
    assert any(path.startswith("/api/v3/depth") for path in paths)
    for _, headers in server.request_headers:
        assert headers["x-mbx-apikey"] == API_KEY and headers["authorization"] == f"Bearer {BEARER}"

    segments = Recording(output).segments
    assert segments and all(s.suffix == ".parquet" for s in segments)
    for segment in segments:
        raw = segment.read_bytes()
        table = pq.read_table(segment)
        cells = [value for column in table.columns for value in column.to_pylist()]
        metadata = b"".join(k + v for k, v in (table.schema.metadata or {}).items())
        for secret in SECRETS:
            assert secret.encode() not in raw
            assert secret.encode() not in metadata
            for cell in cells:
                if isinstance(cell, bytes):
                    assert secret.encode() not in cell
                elif isinstance(cell, str):
                    assert secret not in cell

    events = list(Recording(output).iter_events())
    frames = [e for e in events if e.kind is EventKind.WS_RECV]
    user = [e for e in frames if e.stream == REDACTED]
    assert len(user) == user_frames
    assert all(e.payload.count(REDACTED.encode()) == 5 for e in user)
    # Market frames are untouched, byte for byte.
    market = [e.payload for e in frames if e.stream != REDACTED]
    assert market == [f.payload for f in data.frames if f.stream != LISTEN_KEY]
    opens = [e for e in events if e.kind is EventKind.WS_OPEN]
    assert opens and all(REDACTED in (e.url or "") for e in opens)
    # The redacted user-data stream names no symbol: the recording still serves as a fake venue.
    assert load_replay_data(output).symbols == fixture.symbols
