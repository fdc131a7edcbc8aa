"""Imports a cryptofeed v1 raw capture (`AsyncFileCallback`) into a recording (format v1).

cryptofeed writes one text file per connection and rotation, `EXCHANGE.ws.N.K` (N the connection,
K the rotation), one line per event: `<url> <-> <ts>` when it connects, `<url> <- <ts>: <text>` for
what it sent, `<ts>: <text>` for what it received; venues whose snapshot comes over REST get a
request log beside it, `EXCHANGE.http.M.K`, lines `<url> -> <ts>: <body>`, numbered independently.
`<ts>` is the local wall clock in seconds (`time.time()`); an optional first line `configuration:
...` and empty lines carry no event. Payloads are the bytes between `: ` and the line's end,
unchanged. Given a `.ws` file, the import takes its connection's rotations and every `.http` file of
the same exchange beside it; given a folder, every `.ws` and `.http` file of its one exchange.

What the capture does not hold is made up in the plainest way: each connect line opens a WebSocket
connection of its own id (no close is recorded; the capture just ends, or connects again); each
request line is a request and a 200 response, at the same time, on a connection id of its own.
Rows are in time order across files (a file's own order where times tie). Receive times are the
capture's wall clock, used for both time columns. The venue comes from the WebSocket URLs
(`--venue` overrides); the recording's stream column is what the venue's dialect reads from each
received frame. A binary frame (cryptofeed writes it as a Python bytes literal, `b'...'`) is refused:
its bytes are not in the file as sent.
"""

from __future__ import annotations

import hashlib
import heapq
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import harness
from harness.errors import HarnessError
from harness.venues.dialect import VenueDialect
from harness.venues.registry import DIALECTS
from recorder.capture_hosts import venue_of_urls
from recorder.format import EventKind, RecordingMeta
from recorder.import_hftbacktest import ImportSummary
from recorder.segments import RecordingWriter

FORMAT = "cryptofeed-v1"
_TS = rb"(\d+(?:\.\d+)?)"
_CONNECT = re.compile(rb"(\S+) <-> " + _TS)
_SENT = re.compile(rb"(\S+) <- " + _TS + rb": (.*)", re.DOTALL)
_REQUEST = re.compile(rb"(\S+) -> " + _TS + rb": (.*)", re.DOTALL)
_RECEIVED = re.compile(_TS + rb": (.*)", re.DOTALL)
_FILE = re.compile(r"(?P<exchange>.+)\.(?P<kind>ws|http)\.(?P<conn>[^.]+)\.(?P<rotation>\d+)")


@dataclass(frozen=True, slots=True)
class _Event:
    at_ns: int
    order: int
    kind: EventKind
    conn: str
    url: str | None
    payload: bytes


def import_cryptofeed_v1(
    source: Path, output: Path, *, seconds: float | None = None, venue: str | None = None
) -> ImportSummary:
    """Writes the capture at `source` (a `.ws` file or a folder) as a recording at `output`.

    Raises HarnessError for a file that is not such a capture (naming the file and line), a venue
    that cannot be told or is not one the harness speaks, or an output that already exists.
    """
    source = Path(source)
    if seconds is not None and not seconds > 0:
        raise HarnessError(f"--seconds must be more than 0, got {seconds}")
    if venue is not None and venue not in DIALECTS:
        raise HarnessError(f"unknown venue {venue!r}; known venues: {', '.join(sorted(DIALECTS))}")
    files = capture_files(source)
    events = list(_merged(files, seconds))
    if not events:
        raise HarnessError(f"{source}: no events to import")
    urls = [event.url for event in events if event.kind is EventKind.WS_OPEN and event.url]
    venue = venue or venue_of_urls(source, urls)
    reading = DIALECTS[venue]
    summary = ImportSummary(source, Path(output))
    symbols: dict[str, None] = {}
    rows = list(_rows(events, reading, summary, symbols))
    meta = RecordingMeta(
        venue=venue,
        symbols=tuple(symbols),
        tool_version=harness.__version__,
        start_wall_ns=events[0].at_ns,
        source=f"import {FORMAT} {source.name}",
        recording_id=_recording_id(events),
    )
    try:
        with RecordingWriter(output, meta, fsync=False) as writer:
            for kind, conn_id, at, payload, url, stream, status in rows:
                writer.append(
                    kind, conn_id=conn_id, wall_ns=at, mono_ns=at, payload=payload, url=url, stream=stream,
                    status=status, reason=_REASONS.get(kind),
                )  # fmt: skip
    except OSError as exc:
        raise HarnessError(f"cannot write the recording to {output}: {exc.strerror or exc}") from None
    summary.seconds = (events[-1].at_ns - events[0].at_ns) / 1e9
    return summary


_REASONS = {EventKind.HTTP_REQUEST: "GET", EventKind.HTTP_RESPONSE: "OK"}
_Row = tuple[EventKind, int, int, bytes, str | None, str | None, int | None]


def _rows(
    events: list[_Event], reading: VenueDialect, summary: ImportSummary, symbols: dict[str, None]
) -> Iterator[_Row]:
    """The recording's rows: connection ids in order of first appearance, streams read by the venue."""
    ws_ids: dict[str, int] = {}
    ws_urls: dict[str, str] = {}
    next_id = 1
    for event in events:
        at = event.at_ns
        if event.kind is EventKind.HTTP_REQUEST:
            conn_id, next_id = next_id, next_id + 1
            if reading.snapshot_request(event.url or "") is not None:
                summary.snapshots += 1
            yield EventKind.HTTP_REQUEST, conn_id, at, b"", event.url, None, None
            yield EventKind.HTTP_RESPONSE, conn_id, at, event.payload, event.url, None, 200
            continue
        if event.kind is EventKind.WS_OPEN:
            ws_ids[event.conn], next_id = next_id, next_id + 1
            ws_urls[event.conn] = event.url or ""
            yield EventKind.WS_OPEN, ws_ids[event.conn], at, b"", event.url, None, None
            continue
        conn_id = ws_ids[event.conn]
        url = ws_urls[event.conn]
        if event.kind is EventKind.WS_SEND:
            yield EventKind.WS_SEND, conn_id, at, event.payload, url, None, None
            continue
        stream = reading.stream_of(event.payload)
        if stream is not None:
            summary.frames += 1
            summary.streams[stream] = summary.streams.get(stream, 0) + 1
            symbol = reading.symbol_of(stream)
            if symbol is not None:
                symbols[symbol] = None
        yield EventKind.WS_RECV, conn_id, at, event.payload, url, stream, None


def capture_files(source: Path) -> list[Path]:
    """The files one import reads: a `.ws` file's connection (all its rotations) and its exchange's
    `.http` files beside it, or a folder's one exchange's `.ws` and `.http` files."""
    if source.is_dir():
        named = {path: _FILE.fullmatch(path.name) for path in sorted(source.iterdir()) if path.is_file()}
        exchanges = sorted({match["exchange"] for match in named.values() if match is not None})
        if not exchanges:
            raise HarnessError(f"{source}: no cryptofeed v1 capture files (EXCHANGE.ws.N.K, EXCHANGE.http.M.K) in it")
        if len(exchanges) > 1:
            raise HarnessError(f"{source}: captures of {', '.join(exchanges)}; import one exchange's files at a time")
        files = [path for path, match in named.items() if match is not None]
    else:
        match = _FILE.fullmatch(source.name)
        if match is None or match["kind"] != "ws":
            raise HarnessError(f"{source}: not a cryptofeed v1 frame log (named EXCHANGE.ws.N.K)")
        if not source.is_file():
            raise HarnessError(f"{source}: no such file")
        prefix = f"{match['exchange']}."
        connection = f"{prefix}ws.{match['conn']}."
        files = [
            path
            for path in sorted(source.parent.iterdir())
            if (m := _FILE.fullmatch(path.name)) is not None
            and (path.name.startswith(connection) or (m["kind"] == "http" and path.name.startswith(prefix)))
        ]
    return sorted(files, key=_file_order)


def _file_order(path: Path) -> tuple[str, str, int]:
    match = _FILE.fullmatch(path.name)
    assert match is not None
    return match["kind"], match["conn"], int(match["rotation"])


def _merged(files: list[Path], seconds: float | None) -> Iterator[_Event]:
    """Every file's events merged by time; a connection's rotations read as one file."""
    by_connection: dict[str, list[Path]] = {}
    for path in files:
        match = _FILE.fullmatch(path.name)
        assert match is not None
        by_connection.setdefault(f"{match['kind']}.{match['conn']}", []).append(path)
    streams = [_read_connection(name, paths, index) for index, (name, paths) in enumerate(by_connection.items())]
    first: int | None = None
    for event in heapq.merge(*streams, key=lambda e: (e.at_ns, e.order)):
        if first is None:
            first = event.at_ns
        elif seconds is not None and event.at_ns - first > seconds * 1e9:
            return
        yield event


def _read_connection(name: str, paths: list[Path], index: int) -> Iterator[_Event]:
    is_http = name.startswith("http.")
    connected = False
    previous = 0
    count = 0
    for path in paths:
        try:
            with path.open("rb") as lines:
                for number, raw in enumerate(lines, start=1):
                    line = raw[:-1] if raw.endswith(b"\n") else raw
                    if not line or (number == 1 and line.startswith(b"configuration: ")):
                        continue
                    event = _parse(path, number, line, name, is_http, connected)
                    if event is None:
                        continue
                    at, kind, url, payload = event
                    if at < previous:
                        raise HarnessError(f"{path}:{number}: time goes back ({at} ns after {previous} ns)")
                    previous = at
                    connected = connected or kind is EventKind.WS_OPEN
                    count += 1
                    yield _Event(at, index * 10**12 + count, kind, name, url, payload)
        except OSError as exc:
            raise HarnessError(f"{path}: cannot read it ({exc.strerror or exc})") from None


def _parse(
    path: Path, number: int, line: bytes, name: str, is_http: bool, connected: bool
) -> tuple[int, EventKind, str | None, bytes] | None:
    where = f"{path}:{number}"
    if is_http:
        request = _REQUEST.fullmatch(line)
        if request is None:
            raise HarnessError(f"{where}: expected '<url> -> <time>: <body>' in a request log")
        return _ns(request[2]), EventKind.HTTP_REQUEST, _text(where, request[1]), request[3]
    if (connect := _CONNECT.fullmatch(line)) is not None:
        return _ns(connect[2]), EventKind.WS_OPEN, _text(where, connect[1]), b""
    sent = _SENT.fullmatch(line)
    received = _RECEIVED.fullmatch(line) if sent is None else None
    if sent is None and received is None:
        raise HarnessError(f"{where}: expected '<url> <-> <time>', '<url> <- <time>: <text>' or '<time>: <text>'")
    if not connected:
        raise HarnessError(f"{where}: a frame before the connection's '<url> <-> <time>' line")
    if sent is not None:
        return _ns(sent[2]), EventKind.WS_SEND, None, _frame(where, sent[3])
    assert received is not None
    return _ns(received[1]), EventKind.WS_RECV, None, _frame(where, received[2])


def _frame(where: str, payload: bytes) -> bytes:
    if payload[:2] in (b"b'", b'b"'):
        raise HarnessError(f"{where}: a binary frame written as a Python bytes literal; only text frames import")
    if not payload:
        raise HarnessError(f"{where}: an empty frame")
    return payload


def _text(where: str, raw: bytes) -> str:
    try:
        return raw.decode()
    except UnicodeDecodeError:
        raise HarnessError(f"{where}: the URL is not UTF-8 text") from None


def _ns(seconds: bytes) -> int:
    """`1652459225.5037491` -> nanoseconds, exactly (no float rounding)."""
    whole, _, frac = seconds.partition(b".")
    return int(whole) * 1_000_000_000 + int((frac + b"000000000")[:9])


def _recording_id(events: list[_Event]) -> str:
    """Derived from what was imported, so the same capture and cut give the same recording."""
    digest = hashlib.sha256()
    for event in events:
        digest.update(event.at_ns.to_bytes(8, "big"))
        digest.update(event.payload)
    return str(uuid.UUID(bytes=digest.digest()[:16]))
