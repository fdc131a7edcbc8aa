"""Recording format v1: what the writer puts on disk and what the reader promises to get back."""

from __future__ import annotations

import random
import shutil
from dataclasses import replace
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.errors import HarnessError
from recorder.format import OPEN_SUFFIX, SEALED_SUFFIX, EventKind, RecordedEvent, RecordingMeta, segment_name
from recorder.segments import JournalReader, RecordingExistsError, RecordingWriter, seal_journal
from replayer.reader import Recording, RecordingError

SECOND = 1_000_000_000
META = RecordingMeta(
    venue="binance-spot",
    symbols=("BTCUSDT", "ETHUSDT"),
    tool_version="0.1.0",
    start_wall_ns=1_700_000_000 * SECOND,
    source="test",
    recording_id="rec-1",
)


def make_event(seq: int, rng: random.Random) -> RecordedEvent:
    """A plausible event of any kind; payloads include bytes that are not valid UTF-8."""
    kind = rng.choice(list(EventKind))
    payload = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 64)))
    return RecordedEvent(
        seq=seq,
        conn_id=rng.randrange(1, 5),
        kind=kind,
        recv_wall_ns=META.start_wall_ns + seq * 1_000,
        recv_mono_ns=seq * 1_000,
        url=rng.choice([None, "wss://x/stream?streams=btcusdt@trade", "https://x/api/v3/depth?symbol=BTCUSDT"]),
        stream=rng.choice([None, "btcusdt@trade", "btcusdt@depth@100ms"]),
        payload=payload,
        status=rng.choice([None, 200, 1006]),
        reason=rng.choice([None, "", "GET", "going away"]),
    )


def frame(writer: RecordingWriter, mono_ns: int, payload: bytes = b"x" * 100) -> int:
    return writer.append(
        EventKind.WS_RECV, conn_id=1, wall_ns=META.start_wall_ns + mono_ns, mono_ns=mono_ns, payload=payload
    )


def row_groups(path: Path) -> list[int]:
    meta = pq.ParquetFile(path).metadata
    return [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]


def test_round_trip_keeps_every_field_and_the_metadata(tmp_path: Path) -> None:
    rng = random.Random(7)
    events = [make_event(seq, rng) for seq in range(500)]
    with RecordingWriter(tmp_path / "rec", META, fsync=False) as writer:
        seqs = [writer.append_event(e) for e in events]
    assert seqs == list(range(500))
    assert sorted(p.name for p in (tmp_path / "rec").iterdir()) == [segment_name(0, SEALED_SUFFIX)]
    recording = Recording(tmp_path / "rec")
    assert recording.meta == META
    assert list(recording.iter_events()) == events


def test_runs_extended_in_bulk_read_back_as_the_events_they_hold(tmp_path: Path) -> None:
    """The recorder's path (a run of events sharing conn_id, kind, url, status and reason, handed over
    at once) and `append`'s, interleaved: the same rows, seqs in order, batches cut after a run."""
    rng = random.Random(11)
    events: list[RecordedEvent] = []
    with RecordingWriter(tmp_path / "rec", META, rows_per_group=64, fsync=False) as writer:
        while len(events) < 600:
            first = make_event(len(events), rng)
            head = (first.conn_id, first.kind, first.url, first.status, first.reason)
            run = [
                replace(make_event(len(events) + i, rng), conn_id=head[0], kind=head[1], url=head[2],
                        status=head[3], reason=head[4])
                for i in range(rng.randrange(1, 40))
            ]  # fmt: skip
            if rng.random() < 0.5:
                seq = writer.extend(head, [(e.recv_wall_ns, e.recv_mono_ns, e.stream, e.payload) for e in run])
            else:
                seq = writer.append_event(run[0])
                for event in run[1:]:
                    writer.append_event(event)
            assert seq == len(events)
            events += run
        assert writer.extend(head, []) == len(events)
        batches = list(JournalReader(tmp_path / "rec" / segment_name(0, OPEN_SUFFIX)))
    assert max(len(batch) for batch in batches) < 64 + 40
    assert list(Recording(tmp_path / "rec").iter_events()) == events


def test_segments_are_zstd_with_metadata_in_every_file(tmp_path: Path) -> None:
    with RecordingWriter(tmp_path / "rec", META, segment_max_bytes=1, fsync=False) as writer:
        for i in range(3):
            frame(writer, i * SECOND)
            writer.flush(i * SECOND)
    segments = sorted((tmp_path / "rec").iterdir())
    assert len(segments) == 3
    for index, segment in enumerate(segments):
        parquet = pq.ParquetFile(segment)
        assert parquet.metadata.row_group(0).column(0).compression == "ZSTD"
        raw = parquet.schema_arrow.metadata
        assert RecordingMeta.from_metadata(raw) == META
        assert raw[b"harness.segment_index"] == str(index).encode()


def test_row_group_per_ten_thousand_rows_when_no_flush_interval_passes(tmp_path: Path) -> None:
    with RecordingWriter(tmp_path / "rec", META, fsync=False) as writer:
        for i in range(25_000):
            frame(writer, i, b"p")
    assert row_groups(tmp_path / "rec" / segment_name(0, SEALED_SUFFIX)) == [10_000, 10_000, 5_000]


def test_flushes_every_interval_are_gathered_into_one_row_group_when_sealed(tmp_path: Path) -> None:
    # 10 events a second for 5 seconds: the one-second flush interval cuts journal batches of about 10
    # rows; sealing gathers them into row groups of up to 10,000 (a reader pays per row group).
    with RecordingWriter(tmp_path / "rec", META, fsync=False) as writer:
        for i in range(50):
            frame(writer, i * SECOND // 10)
            if i == 25:
                batches = list(JournalReader(tmp_path / "rec" / segment_name(0, OPEN_SUFFIX)))
                assert len(batches) == 2 and max(len(b) for b in batches) <= 11
    assert row_groups(tmp_path / "rec" / segment_name(0, SEALED_SUFFIX)) == [50]


def test_sealing_gathers_batches_up_to_rows_per_group(tmp_path: Path) -> None:
    with RecordingWriter(tmp_path / "rec", META, rows_per_group=30, fsync=False) as writer:
        for i in range(100):
            frame(writer, i * SECOND // 10)  # batches of 10 or 11 rows
    groups = row_groups(tmp_path / "rec" / segment_name(0, SEALED_SUFFIX))
    assert sum(groups) == 100 and max(groups) <= 30 and min(groups[:-1]) >= 20  # two or three batches each


def test_tick_flushes_buffered_rows_after_the_interval(tmp_path: Path) -> None:
    writer = RecordingWriter(tmp_path / "rec", META, fsync=False)
    frame(writer, 0)
    frame(writer, 1)
    writer.tick(SECOND - 1)
    assert writer.pending_rows == 2
    writer.tick(SECOND)
    assert writer.pending_rows == 0
    assert [e.seq for e in Recording(tmp_path / "rec").iter_events()] == [0, 1]
    writer.close()


def test_rotation_by_size(tmp_path: Path) -> None:
    with RecordingWriter(tmp_path / "rec", META, segment_max_bytes=4_000, fsync=False) as writer:
        for i in range(200):
            frame(writer, i * SECOND // 10, bytes([i % 256]) * 100)
    segments = sorted((tmp_path / "rec").iterdir())
    assert len(segments) > 2
    assert all(p.suffix == SEALED_SUFFIX for p in segments)
    recording = Recording(tmp_path / "rec")
    events = list(recording.iter_events())
    assert [e.seq for e in events] == list(range(200))
    assert [e.payload for e in events] == [bytes([i % 256]) * 100 for i in range(200)]


def test_rotation_by_age(tmp_path: Path) -> None:
    # One event a second, segments at most 5 s old: about one segment per 5 seconds of recording.
    with RecordingWriter(tmp_path / "rec", META, segment_max_ns=5 * SECOND, fsync=False) as writer:
        for i in range(21):
            frame(writer, i * SECOND)
    segments = sorted((tmp_path / "rec").iterdir())
    assert len(segments) == 4
    per_segment = [sum(row_groups(p)) for p in segments]
    assert sum(per_segment) == 21
    assert max(per_segment) <= 6


def test_crash_without_close_keeps_everything_flushed(tmp_path: Path) -> None:
    folder = tmp_path / "rec"
    writer = RecordingWriter(folder, META, segment_max_bytes=8_000)
    for i in range(60):
        frame(writer, i * SECOND // 4)
    flushed = writer.rows_written - writer.pending_rows
    assert writer.pending_rows > 0
    # The process dies here: copy what is on disk, as kill -9 would leave it.
    crashed = tmp_path / "crashed"
    shutil.copytree(folder, crashed)
    suffixes = sorted(p.suffix for p in crashed.iterdir())
    assert OPEN_SUFFIX in suffixes and SEALED_SUFFIX in suffixes
    events = list(Recording(crashed).iter_events())
    assert [e.seq for e in events] == list(range(flushed))
    writer.close()


def test_crashed_journal_can_be_sealed_afterwards(tmp_path: Path) -> None:
    writer = RecordingWriter(tmp_path / "rec", META, fsync=False)
    for i in range(30):
        frame(writer, i * SECOND // 10)
    flushed = writer.rows_written - writer.pending_rows
    journal = tmp_path / "rec" / segment_name(0, OPEN_SUFFIX)
    copy = tmp_path / "copy" / journal.name
    copy.parent.mkdir()
    shutil.copy(journal, copy)
    sealed = copy.with_suffix(SEALED_SUFFIX)
    assert seal_journal(copy, sealed, META.to_metadata(0), fsync=False) == flushed
    assert not copy.exists()
    assert [e.seq for e in Recording(sealed).iter_events()] == list(range(flushed))
    writer.close()


def test_the_segment_written_as_it_flushes_is_the_one_its_journal_seals_to(tmp_path: Path) -> None:
    """The writer's Parquet file, made batch by batch, against `seal_journal` of the same journal (the
    crash path): the same rows in the same row groups, with the same file metadata."""
    writer = RecordingWriter(tmp_path / "rec", META, rows_per_group=25, fsync=False)
    rng = random.Random(5)
    for seq in range(200):
        writer.append_event(make_event(seq, rng))
        if rng.random() < 0.1:
            writer.flush(seq)
    writer.flush()
    journal = tmp_path / "rec" / segment_name(0, OPEN_SUFFIX)
    from_journal = tmp_path / "copy" / segment_name(0, SEALED_SUFFIX)
    from_journal.parent.mkdir()
    shutil.copy(journal, from_journal.with_suffix(OPEN_SUFFIX))
    seal_journal(from_journal.with_suffix(OPEN_SUFFIX), from_journal, META.to_metadata(0), rows_per_group=25)
    [written] = writer.close()
    assert row_groups(written) == row_groups(from_journal) and max(row_groups(written)) <= 25
    assert pq.read_table(written).equals(pq.read_table(from_journal), check_metadata=True)


def test_truncated_journal_tail_is_dropped_and_earlier_batches_kept(tmp_path: Path) -> None:
    writer = RecordingWriter(tmp_path / "rec", META, fsync=False)
    for batch in range(3):
        for i in range(10):
            frame(writer, batch * SECOND + i)
        writer.flush(batch * SECOND + 10)
    journal = tmp_path / "rec" / segment_name(0, OPEN_SUFFIX)
    data = journal.read_bytes()
    crashed = tmp_path / "crashed"
    crashed.mkdir()
    (crashed / journal.name).write_bytes(data[:-7])
    assert [e.seq for e in Recording(crashed).iter_events()] == list(range(20))
    writer.close()


def test_journal_without_header_is_skipped_and_sealed_file_wins_over_its_journal(tmp_path: Path) -> None:
    with RecordingWriter(tmp_path / "rec", META, segment_max_bytes=1, fsync=False) as writer:
        for i in range(3):
            frame(writer, i * SECOND)
            writer.flush(i * SECOND)
    folder = tmp_path / "rec"
    # A crash between the atomic rename and the journal's removal leaves both; the journal repeats rows.
    writer2 = RecordingWriter(tmp_path / "other", META, fsync=False)
    frame(writer2, 0)
    writer2.flush(0)
    shutil.copy(tmp_path / "other" / segment_name(0, OPEN_SUFFIX), folder / segment_name(2, OPEN_SUFFIX))
    # A crash right after the next segment's file was created, before anything reached it.
    (folder / segment_name(3, OPEN_SUFFIX)).write_bytes(b"")
    assert [e.seq for e in Recording(folder).iter_events()] == [0, 1, 2]
    writer2.close()


def test_reader_yields_one_batch_per_row_group_across_segments(tmp_path: Path) -> None:
    with RecordingWriter(tmp_path / "rec", META, rows_per_group=100, segment_max_bytes=20_000, fsync=False) as w:
        for i in range(2_000):
            frame(w, i, bytes([i % 256]) * 40)
    folder = tmp_path / "rec"
    expected_groups = [n for p in sorted(folder.iterdir()) for n in row_groups(p)]
    assert len(list(folder.iterdir())) > 1
    batches = list(Recording(folder).iter_batches(columns=["kind", "payload"]))
    assert [len(b) for b in batches] == expected_groups
    assert all(len(b) <= 100 for b in batches)
    assert batches[0].schema.names == ["kind", "payload"]
    seqs = [s for b in Recording(folder).iter_batches(columns=["seq"]) for s in b.column("seq").to_pylist()]
    assert seqs == list(range(2_000))


def test_existing_output_is_refused(tmp_path: Path) -> None:
    with RecordingWriter(tmp_path / "rec", META, fsync=False) as writer:
        frame(writer, 0)
    with pytest.raises(RecordingExistsError, match="choose a new output path"):
        RecordingWriter(tmp_path / "rec", META)
    (tmp_path / "file").write_bytes(b"x")
    with pytest.raises(RecordingExistsError):
        RecordingWriter(tmp_path / "file", META)
    assert issubclass(RecordingExistsError, HarnessError)
    assert (tmp_path / "file").read_bytes() == b"x"


def test_an_output_path_that_cannot_be_created_is_a_one_line_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"x")
    with pytest.raises(HarnessError, match="cannot write the recording to") as info:
        RecordingWriter(tmp_path / "file" / "rec", META)
    assert "\n" not in str(info.value)


def one_line_error(path: Path) -> str:
    with pytest.raises(RecordingError) as info:
        list(Recording(path).iter_events())
    message = str(info.value)
    assert "\n" not in message
    return message


def test_unreadable_recordings_are_one_line_errors(tmp_path: Path) -> None:
    assert issubclass(RecordingError, HarnessError)
    assert "no such recording" in one_line_error(tmp_path / "missing")

    (tmp_path / "empty").mkdir()
    assert "no segment files" in one_line_error(tmp_path / "empty")

    foreign = tmp_path / "foreign"
    foreign.mkdir()
    pq.write_table(pa.table({"a": [1, 2]}), foreign / segment_name(0, SEALED_SUFFIX))
    assert "not a harness recording" in one_line_error(foreign)

    (tmp_path / "text.parquet").write_bytes(b"hello, not parquet")
    assert "not a readable segment" in one_line_error(tmp_path / "text.parquet")

    future = RecordingMeta(**{**{f: getattr(META, f) for f in META.__slots__}, "format_version": 2})
    with RecordingWriter(tmp_path / "v2", future, fsync=False) as writer:
        frame(writer, 0)
    assert "format v2" in one_line_error(tmp_path / "v2")


def test_corrupt_segment_body_is_a_one_line_error(tmp_path: Path) -> None:
    with RecordingWriter(tmp_path / "rec", META, fsync=False) as writer:
        rng = random.Random(3)
        for i in range(5_000):
            frame(writer, i, rng.randbytes(50))
    segment = tmp_path / "rec" / segment_name(0, SEALED_SUFFIX)
    data = bytearray(segment.read_bytes())
    footer_len = int.from_bytes(data[-8:-4], "little")
    for i in range(100, len(data) - footer_len - 8 - 100, 97):
        data[i] ^= 0xFF
    segment.write_bytes(bytes(data))
    assert "corrupt segment" in one_line_error(tmp_path / "rec")

    segment.write_bytes(bytes(data[: len(data) // 2]))
    assert "not a readable segment" in one_line_error(tmp_path / "rec")


def test_segments_of_another_recording_are_refused(tmp_path: Path) -> None:
    with RecordingWriter(tmp_path / "a", META, fsync=False) as writer:
        frame(writer, 0)
    other = RecordingMeta(**{**{f: getattr(META, f) for f in META.__slots__}, "recording_id": "rec-2"})
    with RecordingWriter(tmp_path / "b", other, fsync=False) as writer:
        frame(writer, 0)
    shutil.copy(tmp_path / "b" / segment_name(0, SEALED_SUFFIX), tmp_path / "a" / segment_name(1, SEALED_SUFFIX))
    with pytest.raises(RecordingError, match="another recording"):
        Recording(tmp_path / "a")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    seed=st.integers(0, 2**32),
    count=st.integers(0, 300),
    rows_per_group=st.integers(1, 64),
    segment_max_bytes=st.integers(500, 20_000),
    flushes=st.lists(st.integers(0, 300), max_size=10),
)
def test_any_batching_and_rotation_reads_back_the_same_events(
    tmp_path_factory: pytest.TempPathFactory,
    seed: int,
    count: int,
    rows_per_group: int,
    segment_max_bytes: int,
    flushes: list[int],
) -> None:
    rng = random.Random(seed)
    events = [make_event(seq, rng) for seq in range(count)]
    folder = tmp_path_factory.mktemp("prop") / "rec"
    flush_at = set(flushes)
    with RecordingWriter(
        folder, META, rows_per_group=rows_per_group, segment_max_bytes=segment_max_bytes, fsync=False
    ) as writer:
        for event in events:
            writer.append_event(event)
            if event.seq in flush_at:
                writer.flush(event.recv_mono_ns)
    if count == 0:
        assert not any(folder.iterdir())
        return
    assert all(len(b) <= rows_per_group for b in Recording(folder).iter_batches())
    assert list(Recording(folder).iter_events()) == events
