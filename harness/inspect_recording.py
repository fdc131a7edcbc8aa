"""`harness inspect`: what is in a recording, computed batch by batch with polars in bounded memory.

Besides counts and rates it lists the connection holes (a `ws_close` and the `ws_open` that ended the
outage, how long it lasted and why the connection closed) and checks the recorded data itself: on a
book stream each frame must continue the previous one on the same connection by the venue's chain
rule (its dialect's `ChainIds.follows`: Binance spot `U == previous u + 1`, USD-M `pu == previous
u`), so a hole there is data the venue (or the recorder) lost, not something replay introduced. A
reconnect starts a new chain. When the recording holds a bookTicker stream, the depth stream rebuilt on its
snapshot is checked against it (replayer/ticker_agreement.py); that check reads the recording's frames
into memory, as a replay does. A journal whose torn last batch was dropped gets a `warning:` line.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import orjson
import polars as pl
import pyarrow.parquet as pq

from harness.errors import HarnessError
from harness.venues.dialect import VenueDialect
from harness.venues.registry import dialect as venue_dialect
from recorder.format import OPEN_SUFFIX, EventKind
from recorder.segments import JournalReader
from replayer.reader import Recording
from replayer.replay_data import load_replay_data
from replayer.ticker_agreement import ticker_agreement

HOLE_EXAMPLES = 10
CONNECTION_HOLES_LISTED = 100
SNAPSHOT_ITEMS = 20
_NO_STREAM = "(none)"


@dataclass(slots=True)
class _Tally:
    """Running totals over the batches; nothing here grows with the number of frames except bounded lists."""

    events: int = 0
    kinds: Counter[str] = field(default_factory=Counter)
    streams: Counter[str] = field(default_factory=Counter)
    close_codes: Counter[int] = field(default_factory=Counter)
    first_mono: int | None = None
    last_mono: int | None = None
    first_wall: int | None = None
    last_wall: int | None = None
    last_u: dict[tuple[int, str], int] = field(default_factory=dict)
    holes: int = 0
    missing_updates: int = 0
    hole_examples: list[dict[str, Any]] = field(default_factory=list)
    snapshots: int = 0
    snapshot_items: list[dict[str, Any]] = field(default_factory=list)
    open_close: dict[str, Any] | None = None
    conn_holes: int = 0
    conn_hole_seconds: float = 0.0
    conn_hole_items: list[dict[str, Any]] = field(default_factory=list)


def inspect_recording(path: Path, as_json: bool) -> str:
    """Summarizes the recording at `path`; raises RecordingError (a HarnessError) when it is unreadable."""
    summary = summarize(path)
    if as_json:
        return orjson.dumps(summary, option=orjson.OPT_INDENT_2).decode()
    return render_text(summary)


def summarize(path: Path) -> dict[str, Any]:
    """The summary as plain data with stable keys (the `--json` output)."""
    recording = Recording(path)
    venue = venue_dialect(recording.venue)
    tally = _Tally()
    for batch in recording.iter_batches():
        # A RecordBatch makes a DataFrame; pyarrow is untyped here, so polars' overloads cannot tell.
        frame = cast(pl.DataFrame, pl.from_arrow(batch.drop_columns(["payload"])))
        _add_batch(tally, frame, batch.column("payload").to_pylist(), venue)
    meta = recording.meta
    first, last = tally.first_mono, tally.last_mono
    duration_s = (last - first) / 1e9 if first is not None and last is not None else 0.0
    frames = tally.kinds[str(EventKind.WS_RECV)]
    ws_opens = tally.kinds[str(EventKind.WS_OPEN)]
    return {
        "path": str(path),
        "format_version": meta.format_version,
        "recording_id": meta.recording_id,
        "venue": meta.venue,
        "symbols": list(meta.symbols),
        "source": meta.source,
        "tool_version": meta.tool_version,
        "start_wall_ns": meta.start_wall_ns,
        "start_time": _iso(meta.start_wall_ns),
        "events": tally.events,
        "first_wall_ns": tally.first_wall,
        "last_wall_ns": tally.last_wall,
        "duration_s": duration_s,
        "events_per_kind": {str(kind): tally.kinds[str(kind)] for kind in EventKind},
        "frames": frames,
        "frames_per_s": _rate(frames, duration_s),
        "streams": {
            stream: {"frames": count, "frames_per_s": _rate(count, duration_s)}
            for stream, count in sorted(tally.streams.items())
        },
        "sequence_holes": {
            "count": tally.holes,
            "missing_updates": tally.missing_updates,
            "examples": tally.hole_examples,
        },
        "connections": {
            "ws_opens": ws_opens,
            "reconnects": max(ws_opens - 1, 0),
            "close_codes": {str(code): n for code, n in sorted(tally.close_codes.items())},
        },
        "holes": {
            "count": tally.conn_holes,
            "seconds": round(tally.conn_hole_seconds, 6),
            "items": tally.conn_hole_items,
        },
        "rest_snapshots": {"count": tally.snapshots, "items": tally.snapshot_items},
        "book_ticker": _book_ticker(path, tally),
        "segments": [_segment_info(segment) for segment in recording.segments],
    }


def _book_ticker(path: Path, tally: _Tally) -> dict[str, Any] | None:
    """The depth stream against the bookTicker stream; None without one, a reason when it cannot run."""
    if not any(stream.endswith("@bookTicker") for stream in tally.streams):
        return None
    try:
        agreement = ticker_agreement(load_replay_data(path))
    except HarnessError as exc:
        return {"not_checked": str(exc)}
    return asdict(agreement) if agreement is not None else None


def _add_batch(tally: _Tally, frame: pl.DataFrame, payloads: list[bytes], venue: VenueDialect) -> None:
    frame = frame.with_columns(pl.col("kind").cast(pl.String), pl.col("stream").cast(pl.String))
    tally.events += frame.height
    monos = frame["recv_mono_ns"]
    walls = frame["recv_wall_ns"]
    if tally.first_mono is None:
        tally.first_mono, tally.first_wall = monos[0], walls[0]
    tally.last_mono, tally.last_wall = monos[-1], walls[-1]
    for kind, n in frame.group_by("kind").len().iter_rows():
        tally.kinds[kind] += n
    received = frame.filter(pl.col("kind") == str(EventKind.WS_RECV))
    for stream, n in received.group_by("stream").len().iter_rows():
        tally.streams[stream or _NO_STREAM] += n
    closes = frame.filter(pl.col("kind") == str(EventKind.WS_CLOSE))
    for code, n in closes.group_by("status").len().iter_rows():
        tally.close_codes[code if code is not None else 0] += n
    lifecycle = frame.filter(pl.col("kind").is_in([str(EventKind.WS_OPEN), str(EventKind.WS_CLOSE)]))
    for row in lifecycle.select("seq", "conn_id", "kind", "recv_mono_ns", "status", "reason").iter_rows():
        _add_lifecycle(tally, *row)
    indexed = frame.with_row_index("row")
    book_streams = [stream for stream in tally.streams if venue.is_book_stream(stream)]
    depth = indexed.filter((pl.col("kind") == str(EventKind.WS_RECV)) & pl.col("stream").is_in(book_streams))
    for row, seq, conn_id, stream in depth.select("row", "seq", "conn_id", "stream").iter_rows():
        _check_sequence(tally, seq, conn_id, stream, payloads[row], venue)
    responses = indexed.filter(pl.col("kind") == str(EventKind.HTTP_RESPONSE))
    for row, seq, url, status in responses.select("row", "seq", "url", "status").iter_rows():
        symbol = venue.snapshot_request(url or "")
        if symbol is not None:
            _add_snapshot(tally, seq, symbol, status, payloads[row], venue)


def _add_lifecycle(
    tally: _Tally, seq: int, conn_id: int, kind: str, mono_ns: int, status: int | None, reason: str | None
) -> None:
    """A close opens a hole; the next open ends it. A close with no open after it is the recording's end."""
    if kind == str(EventKind.WS_CLOSE):
        tally.open_close = {"close_seq": seq, "closed_conn": conn_id, "code": status, "reason": reason, "mono": mono_ns}
        return
    closed = tally.open_close
    tally.open_close = None
    if closed is None:
        return
    seconds = (mono_ns - closed.pop("mono")) / 1e9
    tally.conn_holes += 1
    tally.conn_hole_seconds += seconds
    if len(tally.conn_hole_items) < CONNECTION_HOLES_LISTED:
        tally.conn_hole_items.append({**closed, "open_seq": seq, "opened_conn": conn_id, "seconds": round(seconds, 6)})


def _check_sequence(tally: _Tally, seq: int, conn_id: int, stream: str, payload: bytes, venue: VenueDialect) -> None:
    """One book frame against the last on its connection and stream. Where the venue links frames
    (`prev_id`), a hole's missing updates are not countable (its ids are shared with other books)."""
    try:
        ids = venue.chain_ids(stream, payload)
    except ValueError:
        return
    if ids is None:
        return
    key = (conn_id, stream)
    previous = tally.last_u.get(key)
    tally.last_u[key] = ids.last_id
    if previous is None or ids.follows(previous):
        return
    tally.holes += 1
    example: dict[str, Any] = {"seq": seq, "conn_id": conn_id, "stream": stream}
    if ids.prev_id is None:
        tally.missing_updates += max(ids.first_id - previous - 1, 0)
        example |= {"expected_U": previous + 1, "got_U": ids.first_id}
    else:
        example |= {"expected_prev": previous, "got_prev": ids.prev_id}
    if len(tally.hole_examples) < HOLE_EXAMPLES:
        tally.hole_examples.append(example)


def _add_snapshot(
    tally: _Tally, seq: int, symbol: str, status: int | None, payload: bytes, venue: VenueDialect
) -> None:
    tally.snapshots += 1
    if len(tally.snapshot_items) >= SNAPSHOT_ITEMS:
        return
    try:
        last: int | None = venue.parse_rest_snapshot(symbol, payload)[0]
    except ValueError:
        last = None
    tally.snapshot_items.append({"seq": seq, "symbol": symbol, "status": status, "last_update_id": last})


def _hole_text(hole: dict[str, Any]) -> str:
    if "expected_U" in hole:
        return f"expected U={hole['expected_U']}, got U={hole['got_U']}"
    return f"expected a link to {hole['expected_prev']}, got one to {hole['got_prev']}"


def _segment_info(segment: Path) -> dict[str, Any]:
    torn = None
    if segment.suffix == OPEN_SUFFIX:
        journal = JournalReader(segment)
        rows = sum(len(batch) for batch in journal)
        torn = journal.torn.describe(segment) if journal.torn is not None else None
    else:
        rows = pq.ParquetFile(segment).metadata.num_rows
    return {
        "name": segment.name,
        "rows": rows,
        "bytes": segment.stat().st_size,
        "sealed": segment.suffix != OPEN_SUFFIX,
        "torn": torn,
    }


def _rate(count: int, seconds: float) -> float:
    return round(count / seconds, 3) if seconds > 0 else 0.0


def _iso(wall_ns: int) -> str:
    return datetime.fromtimestamp(wall_ns / 1e9, tz=UTC).isoformat(timespec="milliseconds")


def render_text(s: dict[str, Any]) -> str:
    """The summary for a terminal: one fact per line, examples indented under their heading."""
    holes = s["sequence_holes"]
    conns = s["connections"]
    codes = ", ".join(f"{code}×{n}" for code, n in conns["close_codes"].items()) or "none"
    lines = [
        f"recording   {s['path']}",
        f"venue       {s['venue']}  symbols {','.join(s['symbols'])}",
        f"source      {s['source']}  (harness {s['tool_version']}, format v{s['format_version']})",
        f"started     {s['start_time']}",
        f"duration    {s['duration_s']:.3f} s  ({s['events']} events)",
        "events      " + "  ".join(f"{kind} {n}" for kind, n in s["events_per_kind"].items()),
        f"frames      {s['frames']}  ({s['frames_per_s']:.1f}/s)",
    ]
    lines += [f"  {stream:<28} {v['frames']:>9}  {v['frames_per_s']:>9.1f}/s" for stream, v in s["streams"].items()]
    lines.append(f"seq holes   {holes['count']}  ({holes['missing_updates']} updates missing)")
    lines += [f"  seq {h['seq']} conn {h['conn_id']} {h['stream']}: {_hole_text(h)}" for h in holes["examples"]]
    lines.append(f"reconnects  {conns['reconnects']}  ({conns['ws_opens']} connections; close codes: {codes})")
    gaps = s["holes"]
    lines.append(f"holes       {gaps['count']}  ({gaps['seconds']:.3f} s without a connection)")
    lines += [
        f"  seq {h['close_seq']} conn {h['closed_conn']} closed {h['code']} ({h['reason'] or 'no reason'}), "
        f"seq {h['open_seq']} conn {h['opened_conn']} open {h['seconds']:.3f} s later"
        for h in gaps["items"]
    ]
    snapshots = s["rest_snapshots"]
    lines.append(f"snapshots   {snapshots['count']}")
    lines += [
        f"  seq {i['seq']} {i['symbol']} status {i['status']} lastUpdateId {i['last_update_id']}"
        for i in snapshots["items"]
    ]
    ticker = s["book_ticker"]
    if ticker is not None and "not_checked" in ticker:
        lines.append(f"bookTicker  not checked: {ticker['not_checked']}")
    elif ticker is not None:
        lines.append(
            f"bookTicker  {ticker['compared']} of {ticker['tickers']} at a depth frame's update id: "
            f"{ticker['agree']} agree with the book, {ticker['disagree']} disagree"
        )
        lines += [
            f"  frame {x['frame']} {x['symbol']} u={x['update_id']}: ticker {x['ticker']}, book {x['book']}"
            for x in ticker["examples"]
        ]
    lines.append(f"segments    {len(s['segments'])}")
    lines += [
        f"  {g['name']}  {g['rows']} rows  {g['bytes']} bytes" + ("" if g["sealed"] else "  (open journal)")
        for g in s["segments"]
    ]
    lines += [f"warning: {g['torn']}" for g in s["segments"] if g["torn"]]
    return "\n".join(lines)
