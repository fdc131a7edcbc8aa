"""The segment writer: batches events, journals the open segment, seals it to Parquet on rotation.

Why a journal: a Parquet file is unreadable until its footer is written, so a recorder that dies
mid-segment would lose the whole segment. The open segment is therefore an Arrow IPC stream, whose
batches stay readable after a crash; each flush appends one batch and fsyncs. Each flushed batch also
goes to the segment's Parquet file under a temporary name (zstd, row groups gathered from consecutive
batches), so rotation (by size or by age) and close only finish that file, rename it and remove the
journal, rather than reading the whole journal back and converting it while the recording waits. A
crash loses at most the rows not yet flushed, and the shell flushes at least once a second by calling
`tick`; the temporary file a crash leaves is ignored, and `seal_journal` makes the segment from the
journal.

Each journal batch carries a CRC32 of its buffers in its custom metadata, as sealed segments carry
Parquet page checksums, so a flipped bit is an error rather than plausible wrong rows; and a batch
the crash tore is told apart from damage in the middle (`JournalReader`).

The writer reads no clock: callers pass the monotonic time they stamped on each event.
"""

from __future__ import annotations

import contextlib
import os
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

from harness.errors import HarnessError
from recorder.format import (
    OPEN_SUFFIX,
    SCHEMA,
    SEALED_SUFFIX,
    EventKind,
    RecordedEvent,
    RecordingMeta,
    segment_name,
)

ROWS_PER_GROUP = 10_000
FLUSH_INTERVAL_NS = 1_000_000_000
SEGMENT_MAX_BYTES = 256 * 1024 * 1024
SEGMENT_MAX_NS = 3600 * 1_000_000_000
CHECKSUM_KEY = b"harness.crc32"
"""Each journal batch's custom metadata: the CRC32 of its buffers (`batch_checksum`), in decimal."""
HEADER_CHECKSUM_KEY = b"harness.header_crc32"
"""Each journal batch's custom metadata: the CRC32 of the journal's serialized schema, metadata included."""
CHECKSUMS_KEY = b"harness.journal_checksums"
"""In a journal's schema metadata: every batch carries both checksums, so a batch without them is damaged."""
_CONTINUATION = b"\xff\xff\xff\xff"

RunHead = tuple[int, EventKind, str | None, int | None, str | None]
"""(conn_id, kind, url, status, reason): what a run of events shares, such as one connection's frames."""
Row = tuple[int, int, str | None, bytes]
"""(recv_wall_ns, recv_mono_ns, stream, payload): what changes from one event of a run to the next."""
_ROW_TYPE = pa.struct([SCHEMA.field(name) for name in ("recv_wall_ns", "recv_mono_ns", "stream", "payload")])
_HEAD_FIELDS = tuple(SCHEMA.field(name) for name in ("conn_id", "kind", "url", "status", "reason"))
_ONE = pa.scalar(1, pa.int64())


class RecordingExistsError(HarnessError):
    """Raised instead of ever appending to, or overwriting, a recording that is already there."""


class RecordingWriter:
    """Appends events to a recording folder; `close()` leaves only sealed Parquet segments.

    `redact_payloads`, when given, replaces each batch's payload column before the batch is written
    anywhere: the recorder passes its `Redactor.payloads`, so the scrubbing runs on the writer's thread.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        meta: RecordingMeta,
        *,
        rows_per_group: int = ROWS_PER_GROUP,
        flush_interval_ns: int = FLUSH_INTERVAL_NS,
        segment_max_bytes: int = SEGMENT_MAX_BYTES,
        segment_max_ns: int = SEGMENT_MAX_NS,
        fsync: bool = True,
        redact_payloads: Callable[[pa.BinaryArray], pa.BinaryArray] | None = None,
    ) -> None:
        self.path = Path(path)
        try:
            if self.path.exists() and (not self.path.is_dir() or any(self.path.iterdir())):
                raise RecordingExistsError(f"{self.path} already exists and is not empty; choose a new output path")
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise HarnessError(f"cannot write the recording to {self.path}: {exc.strerror or exc}") from None
        self.meta = meta
        self._rows_per_group = rows_per_group
        self._flush_interval_ns = flush_interval_ns
        self._segment_max_bytes = segment_max_bytes
        self._segment_max_ns = segment_max_ns
        self._fsync = fsync
        self._redact_payloads = redact_payloads
        self._runs: list[tuple[RunHead, list[Row]]] = []
        """Buffered events as runs, turned into columns at flush: a run's shared columns are expanded in C
        (run-end decoding) and only the four that change are converted from Python objects, under half
        the GIL time of converting all ten (measured: the recorder's writer thread, on the real capture)."""
        self._pending = 0
        self._next_seq = 0
        self._segment_index = 0
        self._journal: ipc.RecordBatchStreamWriter | None = None
        self._journal_file: BinaryIO | None = None
        self._journal_path: Path | None = None
        self._header_checksum = 0
        self._parquet: _ParquetSegment | None = None
        self._segment_started_ns: int | None = None
        self._last_flush_ns: int | None = None
        self.sealed: list[Path] = []
        self._closed = False

    @property
    def rows_written(self) -> int:
        return self._next_seq

    @property
    def pending_rows(self) -> int:
        return self._pending

    def append(
        self,
        kind: EventKind,
        *,
        conn_id: int,
        wall_ns: int,
        mono_ns: int,
        payload: bytes = b"",
        url: str | None = None,
        stream: str | None = None,
        status: int | None = None,
        reason: str | None = None,
    ) -> int:
        """Buffers one event and returns its `seq`; flushes when the batch is full or old enough."""
        head = (conn_id, kind, url, status, reason)
        runs = self._runs
        if not runs or runs[-1][0] != head:  # also after close, which leaves no runs: extend refuses
            return self.extend(head, [(wall_ns, mono_ns, stream, payload)])
        runs[-1][1].append((wall_ns, mono_ns, stream, payload))
        return self._buffered(1, mono_ns, mono_ns)

    def extend(self, head: RunHead, rows: list[Row]) -> int:
        """Buffers a run of events that share `head` (the recorder's frames of one loop turn) and returns
        the first one's `seq`. The list is kept, not copied, and may be appended to. Flushes as `append`
        does, once for the whole run, so a batch may exceed `rows_per_group` by less than one run."""
        if self._closed:
            raise ValueError("recording writer is closed")
        if not rows:
            return self._next_seq
        self._runs.append((head, rows))
        return self._buffered(len(rows), rows[0][1], rows[-1][1])

    def _buffered(self, count: int, first_mono_ns: int, last_mono_ns: int) -> int:
        seq = self._next_seq
        self._next_seq += count
        self._pending += count
        if self._last_flush_ns is None:
            self._last_flush_ns = first_mono_ns
        if self._pending >= self._rows_per_group:
            self.flush(last_mono_ns)
        else:
            self.tick(last_mono_ns)
        return seq

    def append_event(self, event: RecordedEvent) -> int:
        """Appends an event built elsewhere (synth, importers); its own `seq` is replaced by the writer's."""
        return self.append(
            event.kind,
            conn_id=event.conn_id,
            wall_ns=event.recv_wall_ns,
            mono_ns=event.recv_mono_ns,
            payload=event.payload,
            url=event.url,
            stream=event.stream,
            status=event.status,
            reason=event.reason,
        )

    def tick(self, now_mono_ns: int) -> None:
        """Flushes when the oldest buffered row is a flush interval old; the shell calls this on a timer."""
        if self._last_flush_ns is not None and now_mono_ns - self._last_flush_ns >= self._flush_interval_ns:
            self.flush(now_mono_ns)

    def flush(self, now_mono_ns: int | None = None) -> None:
        """Writes buffered rows as one batch (one future row group) and makes them durable."""
        self._last_flush_ns = now_mono_ns
        runs = self._runs
        if not runs:
            return
        batch = _as_batch(runs, self._next_seq - self._pending, self._redact_payloads)
        first_mono = runs[0][1][0][1]
        self._runs, self._pending = [], 0
        if self._journal is None:
            self._open_journal(first_mono)
        assert self._journal is not None and self._journal_file is not None and self._segment_started_ns is not None
        checksums = {
            CHECKSUM_KEY: b"%d" % batch_checksum(_as_read_back(batch)),
            HEADER_CHECKSUM_KEY: b"%d" % self._header_checksum,
        }
        self._journal.write_batch(batch, custom_metadata=checksums)
        self._journal_file.flush()
        if self._fsync:
            os.fsync(self._journal_file.fileno())
        assert self._parquet is not None, "opened with the journal"
        self._parquet.add(batch)
        size = self._journal_file.tell()
        age = (now_mono_ns or first_mono) - self._segment_started_ns
        if size >= self._segment_max_bytes or age >= self._segment_max_ns:
            self._seal()

    def close(self) -> list[Path]:
        """Flushes, seals the open segment and returns every sealed segment path."""
        if self._closed:
            return self.sealed
        self.flush()
        self._seal()
        self._closed = True
        return self.sealed

    def __enter__(self) -> RecordingWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _open_journal(self, first_mono_ns: int) -> None:
        self._journal_path = self.path / segment_name(self._segment_index, OPEN_SUFFIX)
        self._journal_file = open(self._journal_path, "wb")  # noqa: SIM115 - lives across calls
        schema = SCHEMA.with_metadata({**self.meta.to_metadata(self._segment_index), CHECKSUMS_KEY: b"crc32"})
        self._header_checksum = zlib.crc32(schema.serialize())
        self._journal = ipc.new_stream(self._journal_file, schema)
        sealed_path = self.path / segment_name(self._segment_index, SEALED_SUFFIX)
        self._parquet = _ParquetSegment(sealed_path, self.meta.to_metadata(self._segment_index), self._rows_per_group)
        self._segment_started_ns = first_mono_ns

    def _seal(self) -> None:
        if self._journal is None:
            return
        assert self._journal_file is not None and self._journal_path is not None and self._parquet is not None
        self._journal.close()
        self._journal_file.close()
        self._journal = None
        self._parquet.finish(fsync=self._fsync)
        self._journal_path.unlink()
        self.sealed.append(self._parquet.sealed_path)
        self._parquet = None
        self._segment_index += 1


def _as_batch(
    runs: list[tuple[RunHead, list[Row]]],
    first_seq: int,
    redact_payloads: Callable[[pa.BinaryArray], pa.BinaryArray] | None,
) -> pa.RecordBatch:
    rows: list[Row] = []
    ends = []
    for _, run in runs:
        rows += run
        ends.append(len(rows))
    run_ends = pa.array(ends, pa.int32())
    columns = {}
    for field, values in zip(_HEAD_FIELDS, zip(*(head for head, _ in runs), strict=True), strict=True):
        columns[field.name] = _expanded(field.type, run_ends, values)
    changing = pa.array(rows, _ROW_TYPE)
    for name in ("recv_wall_ns", "recv_mono_ns", "stream", "payload"):
        columns[name] = changing.field(name)
    if redact_payloads is not None:
        columns["payload"] = redact_payloads(columns["payload"])
    columns["seq"] = pc.cumulative_sum(pa.repeat(_ONE, len(rows)), start=first_seq - 1)
    return pa.RecordBatch.from_arrays([columns[name] for name in SCHEMA.names], schema=SCHEMA)


def _expanded(type_: pa.DataType, run_ends: pa.Array, values: tuple[object, ...]) -> pa.Array:
    """A column that holds `values[i]` on every row of run i (the rows before `run_ends[i]`)."""
    if not pa.types.is_dictionary(type_):
        return pc.run_end_decode(pa.RunEndEncodedArray.from_arrays(run_ends, pa.array(values, type_)))
    distinct = [value for value in dict.fromkeys(values) if value is not None]
    at = {value: index for index, value in enumerate(distinct)}
    indices = pa.array([at.get(value) for value in values], type_.index_type)  # None stays a null index
    expanded = pc.run_end_decode(pa.RunEndEncodedArray.from_arrays(run_ends, indices))
    return pa.DictionaryArray.from_arrays(expanded, pa.array(distinct, type_.value_type))


def seal_journal(
    journal_path: Path,
    sealed_path: Path,
    metadata: dict[bytes, bytes],
    *,
    fsync: bool = True,
    rows_per_group: int = ROWS_PER_GROUP,
) -> int:
    """Converts a journal to Parquet, atomically, then deletes it.

    Consecutive batches are gathered into one row group of up to `rows_per_group` rows (a batch larger
    than that is a row group of its own): a flush every second of a quiet feed makes batches of tens
    of rows, and a reader pays about the same per row group per column whatever its size (an hour of
    one-second row groups read 5x slower than the same rows in 10,000-row groups).
    Also used to recover the journal a crashed recorder left: a torn tail batch is dropped (see
    JournalReader; a damaged journal raises JournalCorruptError and is left in place). Returns the
    number of rows sealed. Batch by batch: a 256 MiB journal is never held in memory at once.
    """
    segment = _ParquetSegment(sealed_path, metadata, rows_per_group)
    try:
        for batch in JournalReader(journal_path):
            segment.add(batch)
    except BaseException:
        segment.abandon()
        raise
    segment.finish(fsync=fsync)
    journal_path.unlink()
    return segment.rows


class _ParquetSegment:
    """A sealed segment in the making: written batch by batch to `<name>.parquet.tmp`, consecutive
    batches gathered into row groups of up to `rows_per_group` rows (a larger batch is a row group of
    its own), then fsynced and renamed by `finish`. At most one row group is held in memory."""

    def __init__(self, sealed_path: Path, metadata: dict[bytes, bytes], rows_per_group: int) -> None:
        self.sealed_path = sealed_path
        self.rows = 0
        self._tmp_path = sealed_path.with_suffix(sealed_path.suffix + ".tmp")
        self._schema = SCHEMA.with_metadata(metadata)
        self._rows_per_group = rows_per_group
        self._gathered: list[pa.RecordBatch] = []
        self._held = 0
        # Page checksums let a reader tell a damaged page from data: without them a flipped bit in a
        # compressed page can decode to plausible, wrong rows.
        self._writer = pq.ParquetWriter(
            self._tmp_path, self._schema, compression="zstd", compression_level=3, write_page_checksum=True
        )

    def add(self, batch: pa.RecordBatch) -> None:
        if self._gathered and self._held + len(batch) > self._rows_per_group:
            self._write_gathered()
        self._gathered.append(batch)
        self._held += len(batch)
        self.rows += len(batch)
        if self._held >= self._rows_per_group:  # no batch could join it: written now, not held
            self._write_gathered()

    def finish(self, *, fsync: bool) -> None:
        try:
            self._write_gathered()
            self._writer.close()
        except BaseException:
            self.abandon()
            raise
        if fsync:
            with open(self._tmp_path, "rb") as handle:
                os.fsync(handle.fileno())
        os.replace(self._tmp_path, self.sealed_path)

    def abandon(self) -> None:
        with contextlib.suppress(Exception):
            self._writer.close()
        self._tmp_path.unlink(missing_ok=True)

    def _write_gathered(self) -> None:
        if not self._gathered:
            return
        table = pa.Table.from_batches(self._gathered, schema=self._schema)
        self._writer.write_table(table, row_group_size=self._held or 1)
        self._gathered, self._held = [], 0


def batch_checksum(batch: pa.RecordBatch) -> int:
    """CRC32 over every buffer of every column, dictionaries included, in schema order.

    Computed on a batch as the IPC reader hands it back, so the writer checksums a round-tripped copy
    (`_as_read_back`): a freshly built array may carry spare capacity that the file never holds.
    """
    crc = 0
    for column in batch.columns:
        arrays = [column, column.dictionary] if pa.types.is_dictionary(column.type) else [column]
        for array in arrays:
            crc = zlib.crc32(b"%d|" % len(array), crc)
            for buffer in array.buffers():
                crc = zlib.crc32(b"-" if buffer is None else memoryview(buffer), crc)
    return crc


def _as_read_back(batch: pa.RecordBatch) -> pa.RecordBatch:
    sink = pa.BufferOutputStream()
    with ipc.new_stream(sink, batch.schema) as stream:
        stream.write_batch(batch)
    return ipc.open_stream(sink.getvalue()).read_next_batch()


class JournalCorruptError(HarnessError):
    """A journal batch failed its checksum, or did not parse, with more data after it: not a crash's tail."""


@dataclass(frozen=True, slots=True)
class TornTail:
    """What a crash left after a journal's last complete batch: `size` bytes from `offset`, dropped."""

    offset: int
    size: int
    batches_before: int

    def describe(self, journal_path: Path) -> str:
        return (
            f"{journal_path.name}: the last batch is torn (the recorder stopped while writing it): "
            f"{self.size} bytes at offset {self.offset} dropped, the {self.batches_before} complete "
            "batches before it are read"
        )


class JournalReader:
    """Iterates a journal's complete, checksum-verified batches; `torn` says what was dropped after them.

    A batch that fails to parse or fails its checksum is the crash's torn tail when nothing complete
    follows it, and is dropped (once iteration ends, `torn` holds where and how much). With a complete
    batch after it the journal is damaged, not torn, and JournalCorruptError is raised rather than
    read past. The header (schema and metadata) is checked too: its columns must be v1's, and each
    batch carries the header's checksum. Journals written before checksums existed carry none and are
    read unverified.
    """

    def __init__(self, journal_path: Path) -> None:
        self.path = Path(journal_path)
        self.torn: TornTail | None = None
        self.batches = 0

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        with open(self.path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            try:
                reader = ipc.open_stream(handle)
            except (pa.ArrowException, OSError, MemoryError):
                handle.seek(0)
                if _holds_a_later_batch(handle.read()):
                    raise JournalCorruptError(
                        f"{self.path}: the journal's header does not parse, and batches follow it"
                    ) from None
                return  # a crash before the first flush: no rows were ever written
            schema = reader.schema
            checked = (schema.metadata or {}).get(CHECKSUMS_KEY) is not None
            if not schema.equals(SCHEMA):
                raise JournalCorruptError(f"{self.path}: the journal's header is damaged (its columns are not v1's)")
            header_checksum = zlib.crc32(schema.serialize())
            while True:
                offset = handle.tell()
                try:
                    batch, custom = reader.read_next_batch_with_custom_metadata()
                except StopIteration:
                    return
                except (pa.ArrowException, OSError, MemoryError) as exc:
                    # A damaged length can ask for more memory than there is: still a batch that does not parse.
                    self._damaged(handle, offset, size, f"does not parse ({_first_line(exc)})")
                    return
                custom = custom or {}
                stored = custom.get(CHECKSUM_KEY)
                if checked and _as_int(custom.get(HEADER_CHECKSUM_KEY)) != header_checksum:
                    self._damaged(handle, offset, size, "does not match the journal's header")
                    return
                if (checked or stored is not None) and _as_int(stored) != batch_checksum(batch):
                    self._damaged(handle, offset, size, "fails its checksum")
                    return
                self.batches += 1
                yield batch

    def _damaged(self, handle: BinaryIO, offset: int, size: int, what: str) -> None:
        handle.seek(offset)
        rest = handle.read()
        if _holds_a_later_batch(rest):
            raise JournalCorruptError(
                f"{self.path}: batch {self.batches + 1} at offset {offset} {what}, and complete batches follow "
                "it; the journal is damaged, not torn by a crash"
            )
        self.torn = TornTail(offset, size - offset, self.batches)


def _as_int(value: bytes | None) -> int | None:
    return int(value) if value is not None and value.isdigit() else None


def journal_holds_batches(journal_path: Path) -> bool:
    """Whether a complete record batch message is anywhere in the file after its start, readable or not:
    a journal whose header does not parse but that holds batches is damaged, not an empty leftover."""
    with open(journal_path, "rb") as handle:
        return _holds_a_later_batch(handle.read())


def _holds_a_later_batch(rest: bytes) -> bool:
    """Whether a complete record batch message starts anywhere in `rest` after its first message's start."""
    at = rest.find(_CONTINUATION, 1)
    while at != -1:
        try:
            message = ipc.read_message(pa.BufferReader(rest[at:]))
        except (pa.ArrowException, OSError, ValueError, MemoryError):
            message = None
        if message is not None and message.type == "record batch":
            return True
        at = rest.find(_CONTINUATION, at + 1)
    return False


def read_journal(journal_path: Path) -> Iterator[pa.RecordBatch]:
    """Yields the complete, verified batches of a journal (a torn tail is dropped; see JournalReader)."""
    yield from JournalReader(journal_path)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
