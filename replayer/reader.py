"""Reads a recording: every segment, in `seq` order, one batch at a time, in bounded memory.

A recording path is a folder of segments or a single segment file. Sealed segments are read row
group by row group; a journal left by a crashed recorder is read up to its last complete batch,
and a torn batch after it is dropped and named in `Recording.notes`.
Anything that is not a readable v1 recording raises RecordingError with a one-line message.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

from harness.errors import HarnessError
from recorder.format import (
    FORMAT_VERSION,
    OPEN_SUFFIX,
    SCHEMA,
    SEALED_SUFFIX,
    SEGMENT_STEM,
    EventKind,
    RecordedEvent,
    RecordingMeta,
)
from recorder.segments import JournalCorruptError, JournalReader, journal_holds_batches

OPEN_SEGMENTS = 2
RUN_ROWS = 4_096
"""Rows of consecutive row groups read in one call when a segment is read through: a recorder seals
a row group every second, and reading one costs about as much as reading a hundred."""

ChunkKey = tuple[int, int]
"""A chunk of a recording: (segment number, row group or journal batch number in it)."""


class RecordingError(HarnessError):
    """A recording that cannot be read as format v1; the message is one line for the user."""


class Recording:
    """A handle on a recording on disk; opening it validates every segment's header, not its rows."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise RecordingError(f"{self.path}: no such recording")
        segments = _segment_files(self.path) if self.path.is_dir() else [self.path]
        if not segments:
            raise RecordingError(f"{self.path}: no segment files ({SEGMENT_STEM}*{SEALED_SUFFIX}) in it")
        self.segments: list[Path] = segments
        self._parquet: dict[int, pq.ParquetFile] = {}
        self._journals: dict[int, _JournalCursor] = {}
        """Files `read_chunks` reads on, by segment number (OPEN_SEGMENTS sealed ones at most: a parsed
        footer holds every row group's metadata, several MB for an hour of one-second row groups)."""
        self.notes: list[str] = []
        """One line per journal whose torn last batch was dropped, filled in as segments are read."""
        self.meta: RecordingMeta = self._read_meta(segments[0])
        for segment in segments[1:]:
            other = self._read_meta(segment)
            if other.recording_id != self.meta.recording_id:
                raise RecordingError(f"{segment}: belongs to another recording ({other.recording_id})")

    @property
    def venue(self) -> str:
        return self.meta.venue

    @property
    def symbols(self) -> tuple[str, ...]:
        return self.meta.symbols

    def iter_batches(self, columns: Sequence[str] | None = None) -> Iterator[pa.RecordBatch]:
        """Yields record batches in `seq` order; checks that `seq` only ever increases."""
        for _, _, batch in self._checked_batches(columns):
            yield batch

    def iter_chunks(self, columns: Sequence[str] | None = None) -> Iterator[tuple[ChunkKey, list[pa.RecordBatch]]]:
        """Yields each chunk (a sealed segment's row group, a journal's batch) as its batches, in `seq`
        order and checked as `iter_batches` checks them, with the key `read_chunks` takes it back by."""
        key: ChunkKey | None = None
        batches: list[pa.RecordBatch] = []
        for _, at, batch in self._checked_batches(columns):
            if at != key and batches:
                assert key is not None
                yield key, batches
                batches = []
            key = at
            batches.append(batch)
        if key is not None and batches:
            yield key, batches

    def read_chunks(self, keys: Sequence[ChunkKey], columns: Sequence[str]) -> list[pa.RecordBatch]:
        """Chunks again, by the keys `iter_chunks` gave them, in order: the row groups of one sealed
        segment are read in one call; a journal (an IPC stream, which has no index) is read on from
        where the last read of it stopped, or again from its start when a chunk lies behind that."""
        batches: list[pa.RecordBatch] = []
        wanted = list(columns)
        at = 0
        while at < len(keys):
            number = keys[at][0]
            end = at
            while end < len(keys) and keys[end][0] == number:
                end += 1
            chunks = [chunk for _, chunk in keys[at:end]]
            segment = self.segments[number]
            if segment.suffix == OPEN_SUFFIX:
                batches += (self._journal_batch(number, chunk).select(wanted) for chunk in chunks)
            else:
                batches += self._row_groups(number, chunks, wanted)
            at = end
        return batches

    def _journal_batch(self, number: int, chunk: int) -> pa.RecordBatch:
        cursor = self._journals.get(number)
        if cursor is None or cursor.position > chunk:
            cursor = self._journals[number] = _JournalCursor(self.segments[number])
        try:
            return cursor.read(chunk)
        except JournalCorruptError as exc:
            raise RecordingError(str(exc)) from None

    def _row_groups(self, number: int, groups: list[int], columns: list[str]) -> list[pa.RecordBatch]:
        segment = self.segments[number]
        try:
            parquet = self._parquet.pop(number, None)
            if parquet is None:
                parquet = pq.ParquetFile(segment, page_checksum_verification=True)
            self._parquet[number] = parquet  # the most recently read last
            while len(self._parquet) > OPEN_SEGMENTS:
                del self._parquet[next(iter(self._parquet))]
            # One thread: a block is a few thousand frames, and pool threads only add malloc arenas.
            return parquet.read_row_groups(groups, columns=columns, use_threads=False).to_batches()
        except (pa.ArrowException, OSError, UnicodeDecodeError) as exc:
            raise RecordingError(f"{segment}: corrupt segment ({_first_line(exc)})") from None

    def iter_events(self) -> Iterator[RecordedEvent]:
        """Yields every event as a RecordedEvent, batch by batch."""
        names: dict[str, str] = {}
        for segment, _, batch in self._checked_batches(None):
            try:
                cols = {name: batch.column(name).to_pylist() for name in SCHEMA.names}
                # One string per stream name, not one per row: a replay keeps every frame's.
                cols["stream"] = [names.setdefault(s, s) if s is not None else None for s in cols["stream"]]
                kinds = [EventKind(k) for k in cols["kind"]]
            except (UnicodeDecodeError, ValueError, pa.ArrowException) as exc:
                raise RecordingError(f"{segment}: corrupt segment ({_first_line(exc)})") from None
            for i in range(len(batch)):
                yield RecordedEvent(
                    seq=cols["seq"][i],
                    conn_id=cols["conn_id"][i],
                    kind=kinds[i],
                    recv_wall_ns=cols["recv_wall_ns"][i],
                    recv_mono_ns=cols["recv_mono_ns"][i],
                    url=cols["url"][i],
                    stream=cols["stream"][i],
                    payload=cols["payload"][i],
                    status=cols["status"][i],
                    reason=cols["reason"][i],
                )

    def _checked_batches(self, columns: Sequence[str] | None) -> Iterator[tuple[Path, ChunkKey, pa.RecordBatch]]:
        """(segment, its chunk, batch) in `seq` order; `seq` must increase row by row, within and across batches."""
        last_seq = -1
        wanted = list(columns) if columns is not None else None
        if wanted is not None and "seq" not in wanted:
            wanted = ["seq", *wanted]
        for number, segment in enumerate(self.segments):
            for chunk, batch in self._segment_batches(segment, wanted):
                if len(batch) == 0:
                    continue
                seqs = batch.column("seq")
                first = seqs[0].as_py()
                if first <= last_seq:
                    raise RecordingError(f"{segment}: seq goes back from {last_seq} to {first}; file is corrupt")
                if len(seqs) > 1 and not pc.all(pc.greater(seqs.slice(1), seqs.slice(0, len(seqs) - 1))).as_py():
                    raise RecordingError(f"{segment}: seq does not increase row by row; file is corrupt")
                last_seq = seqs[len(seqs) - 1].as_py()
                if columns is not None and "seq" not in columns:
                    batch = batch.drop_columns(["seq"])
                yield segment, (number, chunk), batch

    def _read_meta(self, segment: Path) -> RecordingMeta:
        try:
            if segment.suffix == OPEN_SUFFIX:
                with open(segment, "rb") as handle:
                    raw = ipc.open_stream(handle).schema.metadata
            else:
                raw = pq.read_schema(segment).metadata
        except (pa.ArrowException, OSError, MemoryError, UnicodeDecodeError) as exc:
            # A damaged footer can leave metadata bytes that are not UTF-8: pyarrow then raises from decoding.
            raise RecordingError(f"{segment}: not a readable segment ({_first_line(exc)})") from None
        try:
            meta = RecordingMeta.from_metadata(raw)
        except (KeyError, ValueError):
            raise RecordingError(f"{segment}: not a harness recording (no harness.* metadata)") from None
        if meta.format_version != FORMAT_VERSION:
            raise RecordingError(
                f"{segment}: recording format v{meta.format_version}, this harness reads v{FORMAT_VERSION}"
            )
        return meta

    def _segment_batches(self, segment: Path, columns: list[str] | None) -> Iterator[tuple[int, pa.RecordBatch]]:
        """(chunk number in the segment, batch): a row group may come as several batches."""
        if segment.suffix == OPEN_SUFFIX:
            journal = JournalReader(segment)
            try:
                for chunk, batch in enumerate(journal):
                    yield chunk, batch.select(columns) if columns is not None else batch
            except JournalCorruptError as exc:
                raise RecordingError(str(exc)) from None
            if journal.torn is not None:
                self.notes.append(journal.torn.describe(segment))
            return
        try:
            parquet = pq.ParquetFile(segment, page_checksum_verification=True)
            if parquet.schema_arrow.names != SCHEMA.names:
                raise RecordingError(f"{segment}: corrupt segment (columns {parquet.schema_arrow.names})")
            for run in _group_runs(parquet.metadata, RUN_ROWS):
                for group, table in _read_run(parquet, run, columns):
                    for batch in table.to_batches():
                        yield group, batch
        except (pa.ArrowException, OSError, UnicodeDecodeError) as exc:
            raise RecordingError(f"{segment}: corrupt segment ({_first_line(exc)})") from None


def _group_runs(metadata: pq.FileMetaData, rows: int) -> Iterator[list[int]]:
    """The segment's row groups in runs of `rows` or more (the last may hold fewer)."""
    run: list[int] = []
    held = 0
    for group in range(metadata.num_row_groups):
        run.append(group)
        held += metadata.row_group(group).num_rows
        if held >= rows:
            yield run
            run, held = [], 0
    if run:
        yield run


def _read_run(parquet: pq.ParquetFile, run: list[int], columns: list[str] | None) -> Iterator[tuple[int, pa.Table]]:
    """Each row group of a run as its own table, read in one call; one by one when that call fails, so
    the groups before a damaged one are still given before the error."""
    try:
        table = parquet.read_row_groups(run, columns=columns, use_threads=False)
    except (pa.ArrowException, OSError):
        for group in run:
            yield group, parquet.read_row_group(group, columns=columns, use_threads=False)
        return
    at = 0
    for group in run:
        rows = parquet.metadata.row_group(group).num_rows
        yield group, table.slice(at, rows)
        at += rows


class _JournalCursor:
    """A journal read forward batch by batch, for `read_chunks`: IPC streams cannot seek to a batch."""

    def __init__(self, segment: Path) -> None:
        self._batches = iter(JournalReader(segment))
        self.position = 0
        """The number of the batch the next read returns."""

    def read(self, chunk: int) -> pa.RecordBatch:
        for batch in self._batches:
            self.position += 1
            if self.position - 1 == chunk:
                return batch
        raise ValueError(f"the journal has no batch {chunk}")


def _segment_files(folder: Path) -> list[Path]:
    """The segments of a recording folder, in order, leaving out what a crash can leave behind.

    A crash while sealing can leave a segment's journal next to its finished Parquet file (the
    journal is deleted after the atomic rename): the Parquet file wins. A crash before the first
    flush can leave a journal without even its schema header: it holds no flushed rows, so it is
    skipped; a journal whose header does not parse but that holds batches is damaged, and is kept so
    that reading it fails rather than quietly leaving its rows out.
    """
    found = [
        p for p in folder.iterdir() if p.name.startswith(SEGMENT_STEM) and p.suffix in (SEALED_SUFFIX, OPEN_SUFFIX)
    ]
    sealed_stems = {p.stem for p in found if p.suffix == SEALED_SUFFIX}
    segments = []
    for path in sorted(found):
        if path.suffix == OPEN_SUFFIX and _leftover_without_rows(path, sealed_stems):
            continue
        segments.append(path)
    return segments


def _leftover_without_rows(journal: Path, sealed_stems: set[str]) -> bool:
    if journal.stem in sealed_stems:
        return True
    return not _has_journal_header(journal) and not journal_holds_batches(journal)


def _has_journal_header(path: Path) -> bool:
    try:
        with open(path, "rb") as handle:
            ipc.open_stream(handle)
    except (pa.ArrowException, OSError, MemoryError):
        return False
    return True


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
