"""Imports a cryptofeed v3 raw capture (`*.jsonl.zst`) into a recording (format v1).

cryptofeed's v3 raw data collection writes zstd-compressed JSON Lines, one record a line, keyed by
`t`: `header` (the exchange and feed config), `http` (a REST `url` and its response body `data`),
`connect` (a WebSocket `conn` opening `addr`), `send` and `recv` (a frame `data` on `conn`, the text
exactly as sent or received), each with `ts`, epoch seconds as a float. An import is a relabelling:
every frame's text is written as its UTF-8 bytes, unchanged.

What the capture does not hold, and how it is made up (docs/recording-format.md lists it too):
- each WebSocket `conn` is one connection id (1, 2, ... in order of first appearance), opened at its
  `connect` record and closed only where the capture has a `close`/`disconnect` record (a capture
  that just ends leaves its connections open, as the recorder's own do when it is killed);
- each `http` record is a GET request and a 200 response at the same instant, on one connection id
  per cryptofeed `conn` (the capture keeps no status);
- receive times are `ts` for both time columns; rows are in `ts` order (the capture groups lines by
  connection), ties in file order, and every connection's own order is kept.
The venue comes from the WebSocket URLs (`--venue` overrides it; any venue the harness knows); frames
are keyed by what that venue's dialect reads as their stream (Bybit: the topic, qualified
`<category>/<topic>` when the capture holds both spot and linear, so their books stay apart).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path

import orjson
import pyarrow as pa

import harness
from harness.errors import HarnessError
from harness.venues.bybit.topics import category_of_url, qualify
from harness.venues.bybit.venue import DIALECT as BYBIT
from harness.venues.registry import dialect as venue_dialect
from recorder.capture_hosts import venue_of_urls
from recorder.format import EventKind, RecordingMeta
from recorder.segments import RecordingWriter

FORMAT = "cryptofeed-v3"
CHUNK_BYTES = 1 << 20


@dataclass(frozen=True, slots=True)
class _Record:
    line: int
    at_ns: int
    kind: str
    conn: str
    url: str | None = None
    text: str = ""


@dataclass(slots=True)
class CaptureSummary:
    """What an import wrote; `line()` is what the command prints."""

    source: Path
    output: Path
    venue: str = ""
    frames: int = 0
    sent: int = 0
    connections: int = 0
    http: int = 0
    streams: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def line(self) -> str:
        per_stream = ", ".join(f"{name} {count}" for name, count in self.streams.items())
        return (
            f"imported {self.venue}: {self.frames} frames received ({per_stream}), {self.sent} sent, "
            f"{self.connections} connections, {self.http} HTTP responses, {self.seconds:.1f} s, "
            f"from {self.source} to {self.output}"
        )


def import_cryptofeed_v3(
    source: Path, output: Path, *, seconds: float | None = None, venue: str | None = None
) -> CaptureSummary:
    """Writes the capture at `source` (or its first `seconds`) as a recording at `output`.

    HarnessError for a file that is not such a capture (naming the file and line), a venue the
    importer does not know, or an output that already exists; the same input gives the same bytes.
    """
    source = Path(source)
    if seconds is not None and not seconds > 0:
        raise HarnessError(f"--seconds must be more than 0, got {seconds}")
    records = sorted(_records(source), key=lambda r: (r.at_ns, r.line))
    if seconds is not None and records:
        limit = records[0].at_ns + round(seconds * 1e9)
        records = [r for r in records if r.at_ns <= limit]
    ws_urls = list(dict.fromkeys(r.url for r in records if r.kind == "connect" and r.url))
    if not ws_urls:
        raise HarnessError(f"{source}: no WebSocket connection in the capture")
    name = venue or venue_of_urls(source, ws_urls)
    dialect = venue_dialect(name)
    categories = {category_of_url(url) for url in ws_urls} if name == BYBIT.name else set()
    qualified = len(categories) > 1
    conn_ids: dict[str, int] = {}
    conn_urls: dict[str, str] = {}
    streams: dict[tuple[str, int], str | None] = {}
    for record in records:
        if record.kind == "connect":
            if record.conn in conn_ids:
                raise HarnessError(f"{source}:{record.line}: connection {record.conn} connects twice")
            conn_ids[record.conn] = len(conn_ids) + 1
            assert record.url is not None
            conn_urls[record.conn] = record.url
        elif record.kind == "http" and record.conn not in conn_ids:
            conn_ids[record.conn] = len(conn_ids) + 1
        elif record.kind in ("send", "recv", "close") and record.conn not in conn_ids:
            raise HarnessError(f"{source}:{record.line}: {record.kind} on {record.conn}, which never connected")
        if record.kind == "recv":
            stream = dialect.stream_of(record.text.encode())
            if stream is not None and qualified:
                category = category_of_url(conn_urls[record.conn])
                stream = qualify(category, stream) if category is not None else stream
            streams[(record.conn, record.line)] = stream
    book_streams = [s for s in dict.fromkeys(streams.values()) if s is not None and dialect.is_book_stream(s)]
    if not book_streams:
        raise HarnessError(f"{source}: no {name} book stream in the capture; nothing a book could be built from")
    symbols = tuple(dict.fromkeys(s for s in (dialect.symbol_of(b) for b in book_streams) if s is not None))
    meta = RecordingMeta(
        venue=name,
        symbols=symbols,
        tool_version=harness.__version__,
        start_wall_ns=records[0].at_ns,
        source=f"import {FORMAT} {source.name}",
        recording_id=_recording_id(records),
    )
    summary = CaptureSummary(source, Path(output), venue=name)
    try:
        with RecordingWriter(output, meta, fsync=False) as writer:
            for record in records:
                conn_id = conn_ids[record.conn]
                at = record.at_ns
                url = conn_urls.get(record.conn, record.url)
                if record.kind == "connect":
                    summary.connections += 1
                    writer.append(EventKind.WS_OPEN, conn_id=conn_id, wall_ns=at, mono_ns=at, url=url)
                elif record.kind == "close":
                    writer.append(EventKind.WS_CLOSE, conn_id=conn_id, wall_ns=at, mono_ns=at, url=url)
                elif record.kind == "send":
                    summary.sent += 1
                    payload = record.text.encode()
                    writer.append(EventKind.WS_SEND, conn_id=conn_id, wall_ns=at, mono_ns=at, url=url, payload=payload)
                elif record.kind == "recv":
                    stream = streams[(record.conn, record.line)]
                    summary.frames += 1
                    if stream is not None:
                        summary.streams[stream] = summary.streams.get(stream, 0) + 1
                    payload = record.text.encode()
                    writer.append(
                        EventKind.WS_RECV,
                        conn_id=conn_id,
                        wall_ns=at,
                        mono_ns=at,
                        url=url,
                        stream=stream,
                        payload=payload,
                    )
                else:
                    summary.http += 1
                    writer.append(
                        EventKind.HTTP_REQUEST, conn_id=conn_id, wall_ns=at, mono_ns=at, url=record.url, reason="GET"
                    )
                    writer.append(
                        EventKind.HTTP_RESPONSE,
                        conn_id=conn_id,
                        wall_ns=at,
                        mono_ns=at,
                        url=record.url,
                        payload=record.text.encode(),
                        status=200,
                        reason="OK",
                    )
    except OSError as exc:
        raise HarnessError(f"cannot write the recording to {output}: {exc.strerror or exc}") from None
    summary.seconds = (records[-1].at_ns - records[0].at_ns) / 1e9
    return summary


def _lines(source: Path) -> Iterator[tuple[int, bytes]]:
    try:
        stream = pa.input_stream(str(source), compression="zstd")
    except FileNotFoundError:
        raise HarnessError(f"{source}: no such file") from None
    except IsADirectoryError:
        raise HarnessError(f"{source}: is a folder; expected a zstd-compressed cryptofeed v3 capture") from None
    except OSError as exc:
        raise HarnessError(f"{source}: cannot read it ({exc})") from None
    number = 0
    rest = b""
    with stream:
        while True:
            try:
                chunk = stream.read(CHUNK_BYTES)
            except OSError as exc:
                raise HarnessError(f"{source}: not a zstd-compressed cryptofeed v3 capture ({exc})") from None
            if not chunk:
                break
            lines = (rest + chunk).split(b"\n")
            rest = lines.pop()
            for line in lines:
                number += 1
                yield number, line
    if rest:
        yield number + 1, rest


def _records(source: Path) -> Iterator[_Record]:
    for number, raw in _lines(source):
        if not raw.strip():
            continue
        record = _parse(source, number, raw)
        if record is not None:
            yield record


def _parse(source: Path, number: int, raw: bytes) -> _Record | None:
    where = f"{source}:{number}"
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise HarnessError(f"{where}: not JSON ({exc})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("t"), str):
        raise HarnessError(f"{where}: not a {FORMAT} record (a JSON object with a `t` type)")
    kind = doc["t"]
    if kind == "header":
        return None
    if kind == "disconnect":
        kind = "close"
    if kind not in ("http", "connect", "send", "recv", "close"):
        raise HarnessError(f"{where}: unknown record type {kind!r}")
    conn = doc.get("conn")
    ts = doc.get("ts")
    if not isinstance(conn, str) or not conn:
        raise HarnessError(f"{where}: a {kind} record needs a `conn` name")
    if isinstance(ts, bool) or not isinstance(ts, int | float):
        raise HarnessError(f"{where}: a {kind} record needs a numeric `ts`")
    try:
        at_ns = int(Decimal(repr(ts)) * 1_000_000_000)
    except InvalidOperation:
        raise HarnessError(f"{where}: `ts` {ts!r} is not a time") from None
    if at_ns <= 0:
        raise HarnessError(f"{where}: `ts` {ts!r} is not a time")
    url = doc.get("addr") if kind != "http" else doc.get("url")
    if kind in ("connect", "http") and not (isinstance(url, str) and url):
        raise HarnessError(f"{where}: a {kind} record needs {'`url`' if kind == 'http' else '`addr`'}")
    text = doc.get("data", "")
    if kind in ("send", "recv", "http") and not isinstance(text, str):
        raise HarnessError(f"{where}: a {kind} record needs its frame text in `data`")
    return _Record(
        number, at_ns, kind, conn, url if isinstance(url, str) else None, text if isinstance(text, str) else ""
    )


def _recording_id(records: list[_Record]) -> str:
    """Derived from what was imported, so the same capture and cut give the same recording."""
    digest = hashlib.sha256()
    for record in records:
        digest.update(f"{record.at_ns}:{record.kind}:{record.conn}:".encode())
        digest.update(record.text.encode())
    return str(uuid.UUID(bytes=digest.digest()[:16]))
