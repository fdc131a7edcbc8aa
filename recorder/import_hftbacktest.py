"""Imports a Binance capture (spot or USD-M) in hftbacktest's collector format into a recording (format v1).

hftbacktest's collector writes gzip text, one line per message: `<local receive time, ns> <raw JSON>`,
the JSON exactly as it arrived: combined-stream frames (`{"stream":..,"data":..}`) and, where the
collector fetched one, the bare body of the REST depth snapshot. That is what our recorder captures
too, so an import is a relabelling, never a re-serialization: payloads keep their bytes.

What the capture does not hold is made up in the plainest way and written down in
docs/recording-format.md: one WebSocket connection (conn 1) opened at the first line's time, on the
combined URL of the streams the capture holds; each snapshot as a request and response pair on its
own connection id at the snapshot line's time, its URL naming the capture's one depth symbol and a
`limit` equal to the levels the body holds; no close, since the capture just ends. Receive times are
the collector's wall clock, used for both time columns.

The venue comes from the capture: depth events with `pu` are Binance USD-M futures' (binance-usdm,
REST `/fapi/v1/depth`), without it Binance spot's; `venue=` (`harness import --venue`) overrides.
"""

from __future__ import annotations

import gzip
import hashlib
import uuid
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import orjson

import harness
from harness.errors import HarnessError
from harness.venues.binance_spot.streams import stream_of
from harness.venues.binance_spot.venue import BinanceDialect
from harness.venues.registry import dialect
from recorder.format import EventKind, RecordingMeta
from recorder.segments import RecordingWriter

FORMAT = "hftbacktest"
VENUES = ("binance-spot", "binance-usdm")
"""The venues hftbacktest's Binance collector captures."""
WS_CONN_ID = 1


@dataclass(frozen=True, slots=True)
class _Line:
    number: int
    recv_ns: int
    payload: bytes
    stream: str | None
    linked: bool = False
    """A depth event with `pu`: USD-M's."""


@dataclass(slots=True)
class ImportSummary:
    """What an import wrote; `line()` is what the command prints."""

    source: Path
    output: Path
    frames: int = 0
    snapshots: int = 0
    streams: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def line(self) -> str:
        per_stream = ", ".join(f"{name} {count}" for name, count in self.streams.items())
        return (
            f"imported {self.frames} frames ({per_stream}) and {self.snapshots} REST snapshots, "
            f"{self.seconds:.1f} s, from {self.source} to {self.output}"
        )


def import_hftbacktest(
    source: Path, output: Path, *, seconds: float | None = None, venue: str | None = None
) -> ImportSummary:
    """Writes the capture at `source` (or its first `seconds`) as a recording at `output`.

    `venue` None takes it from the capture (see the module docstring). Raises HarnessError for a file
    that is not such a capture, a venue the collector does not capture, or an output that already
    exists; the same input always gives the same bytes.
    """
    source = Path(source)
    if seconds is not None and not seconds > 0:
        raise HarnessError(f"--seconds must be more than 0, got {seconds}")
    if venue is not None and dialect(venue).name not in VENUES:
        raise HarnessError(f"hftbacktest captures are of {' or '.join(VENUES)}, not {venue}")
    lines = list(_read(source, seconds))
    if not lines:
        raise HarnessError(f"{source}: no lines to import")
    if venue is None:
        venue = VENUES[1] if any(line.linked for line in lines) else VENUES[0]
    info = dialect(venue)
    assert isinstance(info, BinanceDialect), "VENUES are Binance's"
    streams = list(dict.fromkeys(line.stream for line in lines if line.stream is not None))
    depth_symbols = [s.split("@", 1)[0].upper() for s in dict.fromkeys(streams) if info.is_book_stream(s)]
    if not depth_symbols:
        raise HarnessError(f"{source}: no {venue} depth stream in the capture; nothing a book could be built from")
    has_snapshot = any(line.stream is None for line in lines)
    if has_snapshot and len(depth_symbols) > 1:
        raise HarnessError(
            f"{source}: depth streams for {', '.join(depth_symbols)}, and a REST snapshot body does not say "
            "which symbol it is for; import one symbol's capture at a time"
        )
    ws_url = info.ws_url(info.live_ws_url, streams)
    symbols = tuple(dict.fromkeys(name for s in streams if (name := info.symbol_of(s)) is not None))
    meta = RecordingMeta(
        venue=venue,
        symbols=symbols,
        tool_version=harness.__version__,
        start_wall_ns=lines[0].recv_ns,
        source=f"import {FORMAT} {source.name}",
        recording_id=_recording_id(lines),
    )
    summary = ImportSummary(source, Path(output), streams=dict.fromkeys(streams, 0))
    try:
        _write(
            output,
            meta,
            lines,
            ws_url,
            depth_url_for=lambda levels: info.depth_url(info.live_rest_url, depth_symbols[0], levels),
            summary=summary,
        )
    except OSError as exc:
        raise HarnessError(f"cannot write the recording to {output}: {exc.strerror or exc}") from None
    summary.seconds = (lines[-1].recv_ns - lines[0].recv_ns) / 1e9
    return summary


def _write(
    output: Path,
    meta: RecordingMeta,
    lines: list[_Line],
    ws_url: str,
    *,
    depth_url_for: Callable[[int], str],
    summary: ImportSummary,
) -> None:
    """All the writing, in one place, so a full disk anywhere in it is one error line for the caller."""
    rest_conn_id = WS_CONN_ID
    with RecordingWriter(output, meta, fsync=False) as writer:
        writer.append(
            EventKind.WS_OPEN, conn_id=WS_CONN_ID, wall_ns=lines[0].recv_ns, mono_ns=lines[0].recv_ns, url=ws_url
        )
        for line in lines:
            at = line.recv_ns
            if line.stream is not None:
                summary.frames += 1
                summary.streams[line.stream] += 1
                writer.append(
                    EventKind.WS_RECV,
                    conn_id=WS_CONN_ID,
                    wall_ns=at,
                    mono_ns=at,
                    payload=line.payload,
                    url=ws_url,
                    stream=line.stream,
                )
                continue
            rest_conn_id += 1
            summary.snapshots += 1
            url = depth_url_for(_levels(line))
            writer.append(EventKind.HTTP_REQUEST, conn_id=rest_conn_id, wall_ns=at, mono_ns=at, url=url, reason="GET")
            writer.append(
                EventKind.HTTP_RESPONSE,
                conn_id=rest_conn_id,
                wall_ns=at,
                mono_ns=at,
                payload=line.payload,
                url=url,
                status=200,
                reason="OK",
            )


def _read(source: Path, seconds: float | None) -> Iterator[_Line]:
    """The capture's lines, checked one by one, up to `seconds` after the first."""
    limit_ns = round(seconds * 1e9) if seconds is not None else None
    first: int | None = None
    previous = 0
    try:
        with gzip.open(source, "rb") as text:
            for number, raw in enumerate(text, start=1):
                line = _parse(source, number, raw.rstrip(b"\r\n"))
                if line.recv_ns < previous:
                    raise HarnessError(f"{source}:{number}: receive time goes back ({line.recv_ns} after {previous})")
                previous = line.recv_ns
                if first is None:
                    first = line.recv_ns
                elif limit_ns is not None and line.recv_ns - first > limit_ns:
                    return
                yield line
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise HarnessError(f"{source}: not a gzip-compressed hftbacktest capture ({exc})") from None
    except FileNotFoundError:
        raise HarnessError(f"{source}: no such file") from None
    except IsADirectoryError:
        raise HarnessError(f"{source}: is a folder; expected a gzip-compressed hftbacktest capture") from None
    except OSError as exc:
        raise HarnessError(f"{source}: cannot read it ({exc.strerror or exc})") from None


def _parse(source: Path, number: int, raw: bytes) -> _Line:
    stamp, _, payload = raw.partition(b" ")
    if not stamp.isdigit() or not payload:
        raise HarnessError(f"{source}:{number}: expected '<receive time ns> <JSON>'")
    stream = stream_of(payload)
    if stream is not None:
        linked = "@depth" in stream and b'"pu":' in payload
        return _Line(number, int(stamp), payload, stream, linked)
    try:
        body = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise HarnessError(f"{source}:{number}: not JSON ({exc})") from None
    if not (isinstance(body, dict) and "lastUpdateId" in body and "bids" in body and "asks" in body):
        raise HarnessError(f"{source}:{number}: neither a combined-stream frame nor a REST depth snapshot")
    return _Line(number, int(stamp), payload, None)


def _levels(line: _Line) -> int:
    body = orjson.loads(line.payload)
    return max(len(body["bids"]), len(body["asks"]), 1)


def _recording_id(lines: list[_Line]) -> str:
    """Derived from what was imported, so the same capture and cut give the same recording."""
    digest = hashlib.sha256()
    for line in lines:
        digest.update(line.recv_ns.to_bytes(8, "big"))
        digest.update(line.payload)
    return str(uuid.UUID(bytes=digest.digest()[:16]))
