"""What journal checksums cost: a recorder flush (batch built, checksummed, journalled) against the same
batch built and written to a bare Arrow IPC stream, in the same run.

Both write 20 batches of 10,000 depth-frame rows in a temporary folder, without fsync (the fsync is the
same for both and would only add the disk's noise); only the flush is timed, not the appends. The
flush runs on the recorder's writer thread, never on the event loop, so this is the writer's headroom,
not frame latency. Reported, not judged: there is no target.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.ipc as ipc

from bench import results
from bench.timing import cpu_timed
from recorder.format import SCHEMA, EventKind, RecordingMeta
from recorder.segments import RecordingWriter

ROWS = 10_000
BATCHES = 20
REPEATS = 5
PAYLOAD = (
    b'{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1700000000000,"s":"BTCUSDT","U":1,"u":2,'
    b'"b":[["42000.10","1.50000000"],["41999.90","0.25000000"]],"a":[["42000.20","2.00000000"]]}}'
)
URL = "wss://stream.binance.com:9443/stream?streams=btcusdt@depth@100ms/btcusdt@trade"
META = RecordingMeta("binance-spot", ("BTCUSDT",), "bench", 0, "bench", "bench")


def _columns(first_seq: int) -> dict[str, list]:
    return {
        "seq": list(range(first_seq, first_seq + ROWS)),
        "conn_id": [1] * ROWS,
        "kind": [str(EventKind.WS_RECV)] * ROWS,
        "recv_wall_ns": list(range(first_seq, first_seq + ROWS)),
        "recv_mono_ns": list(range(first_seq, first_seq + ROWS)),
        "url": [URL] * ROWS,
        "stream": ["btcusdt@depth@100ms"] * ROWS,
        "payload": [PAYLOAD] * ROWS,
        "status": [None] * ROWS,
        "reason": [None] * ROWS,
    }


def _recorder_flushes(folder: Path) -> int:
    """Thread CPU ns of the flushes alone: the rows are appended untimed, then each flush is timed."""
    writer = RecordingWriter(
        folder / "rec", META, rows_per_group=2**31, flush_interval_ns=2**62, fsync=False, segment_max_bytes=2**40
    )
    total = 0
    for batch in range(BATCHES):
        for row in range(ROWS):
            seq = batch * ROWS + row
            writer.append(
                EventKind.WS_RECV, conn_id=1, wall_ns=seq, mono_ns=seq, payload=PAYLOAD, url=URL,
                stream="btcusdt@depth@100ms",
            )  # fmt: skip
        with cpu_timed() as spent:
            writer.flush(batch)
        total += spent[0]
    writer.close()
    return total


def _bare_ipc(folder: Path) -> int:
    """Thread CPU ns of building each batch from the same columns and writing it to a bare IPC stream."""
    total = 0
    with open(folder / "bare.arrows", "wb") as sink, ipc.new_stream(sink, SCHEMA) as stream:
        for batch in range(BATCHES):
            columns = _columns(batch * ROWS)
            with cpu_timed() as spent:
                stream.write_batch(pa.RecordBatch.from_pydict(columns, schema=SCHEMA))
            total += spent[0]
    return total


def main() -> int:
    recorder_ns, bare_ns = [], []
    for _ in range(REPEATS):
        with tempfile.TemporaryDirectory(prefix="journal-bench-") as folder:
            recorder_ns.append(_recorder_flushes(Path(folder)))
            bare_ns.append(_bare_ipc(Path(folder)))
    rows = ROWS * BATCHES
    best_recorder, best_bare = min(recorder_ns), min(bare_ns)
    print(f"journal: {rows:,} depth-frame rows in {BATCHES} batches, best of {REPEATS} (thread CPU time)")
    print(f"  bare IPC stream (batch built, written):         {rows / best_bare * 1e9:>12,.0f} rows/s")
    print(f"  recorder flush (batch built, checksum, written): {rows / best_recorder * 1e9:>12,.0f} rows/s")
    print(f"  ratio: a flush takes {best_recorder / best_bare:.2f}x the bare write (reported, no target)")
    results.put(
        "journal_flush_vs_bare_ipc",
        ratio=best_bare / best_recorder,
        meaning="recorder flush rows/s (checksummed, journalled) over a bare Arrow IPC write; 1.0 would be free",
        comparison="the same batch built and written to a bare IPC stream",
        raw={"rows": rows, "recorder_rows_per_s": round(rows / best_recorder * 1e9),
             "bare_rows_per_s": round(rows / best_bare * 1e9)},
    )  # fmt: skip
    return 0
