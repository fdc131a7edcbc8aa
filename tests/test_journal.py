"""Journals (the open segment a crash leaves) are checksummed: a torn last batch is reported and dropped,
damage with data after it is an error, and neither is ever read as rows."""

from __future__ import annotations

import random
import shutil
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.ipc as ipc
import pytest

from harness.inspect_recording import inspect_recording, summarize
from harness.replay import BUNDLED_FIXTURE, ReplayRequest, run_replay
from recorder.format import OPEN_SUFFIX, SCHEMA, segment_name
from recorder.segments import CHECKSUM_KEY, JournalReader, RecordingWriter, seal_journal
from replayer.reader import Recording, RecordingError
from replayer.replay_data import load_replay_data
from tests.test_recording_format import META, SECOND, frame

ROWS = 10
MARKS = (b"A", b"B", b"C")


def journal_of_three_batches(folder: Path) -> tuple[Path, list[int]]:
    """A crashed recorder's journal: three flushed batches of ten rows, batch k's payloads all MARKS[k].

    Returns the journal and the file size after each flush (where each batch ends)."""
    writer = RecordingWriter(folder, META, fsync=False)
    ends = []
    for batch, mark in enumerate(MARKS):
        for i in range(ROWS):
            frame(writer, batch * SECOND + i, mark * 120)
        writer.flush(batch * SECOND + ROWS)
        ends.append((folder / segment_name(0, OPEN_SUFFIX)).stat().st_size)
    return folder / segment_name(0, OPEN_SUFFIX), ends


def crashed_copy(tmp_path: Path, journal: Path, data: bytes) -> Path:
    crashed = tmp_path / "crashed"
    shutil.rmtree(crashed, ignore_errors=True)
    crashed.mkdir()
    (crashed / journal.name).write_bytes(data)
    return crashed


def test_every_batch_carries_a_checksum(tmp_path: Path) -> None:
    journal, _ = journal_of_three_batches(tmp_path / "rec")
    with open(journal, "rb") as handle:
        reader = ipc.open_stream(handle)
        stored = [reader.read_next_batch_with_custom_metadata()[1] for _ in MARKS]
    assert all(CHECKSUM_KEY in metadata for metadata in stored)


def test_a_torn_last_batch_is_reported_once_and_never_read(tmp_path: Path) -> None:
    journal, ends = journal_of_three_batches(tmp_path / "rec")
    data = journal.read_bytes()
    # Every way the last write can be cut short (sampled every 13 bytes, plus its first and last byte).
    cuts = sorted({ends[1] + 1, ends[2] - 1, *range(ends[1] + 1, ends[2], 13)})
    for cut in cuts:
        crashed = crashed_copy(tmp_path, journal, data[:cut])
        recording = Recording(crashed)
        events = list(recording.iter_events())
        assert [e.seq for e in events] == list(range(2 * ROWS)), cut
        assert {e.payload for e in events} == {MARKS[0] * 120, MARKS[1] * 120}
        assert recording.notes == [
            f"{journal.name}: the last batch is torn (the recorder stopped while writing it): "
            f"{cut - ends[1]} bytes at offset {ends[1]} dropped, the 2 complete batches before it are read"
        ]
    text = inspect_recording(crashed, as_json=False)
    assert text.count("warning: ") == 1 and "the last batch is torn" in text
    assert summarize(crashed)["segments"][0]["rows"] == 2 * ROWS


def test_a_last_batch_with_a_flipped_bit_is_torn_not_data(tmp_path: Path) -> None:
    journal, ends = journal_of_three_batches(tmp_path / "rec")
    data = bytearray(journal.read_bytes())
    data[data.rindex(MARKS[2] * 120) + 5] ^= 0x01
    crashed = crashed_copy(tmp_path, journal, bytes(data))
    recording = Recording(crashed)
    assert [e.seq for e in recording.iter_events()] == list(range(2 * ROWS))
    assert len(recording.notes) == 1 and f"{ends[2] - ends[1]} bytes at offset {ends[1]}" in recording.notes[0]
    # Sealing the leftover drops the torn batch too.
    sealed = crashed / "sealed.parquet"
    assert seal_journal(crashed / journal.name, sealed, META.to_metadata(0), fsync=False) == 2 * ROWS


@pytest.mark.parametrize("damage", ["flip", "truncate_middle"])
def test_damage_before_the_last_batch_is_an_error_not_a_shorter_recording(tmp_path: Path, damage: str) -> None:
    journal, ends = journal_of_three_batches(tmp_path / "rec")
    data = bytearray(journal.read_bytes())
    if damage == "flip":
        data[data.index(MARKS[1] * 120) + 7] ^= 0x40
    else:
        del data[ends[0] + 40 : ends[0] + 60]
    crashed = crashed_copy(tmp_path, journal, bytes(data))
    with pytest.raises(RecordingError, match=r"batch 2 at offset \d+ .*complete batches follow it") as info:
        list(Recording(crashed).iter_events())
    assert "\n" not in str(info.value)
    assert (crashed / journal.name).exists()


def test_a_journal_written_before_checksums_is_read_unverified(tmp_path: Path) -> None:
    folder = tmp_path / "old"
    folder.mkdir()
    path = folder / segment_name(0, OPEN_SUFFIX)
    rows: dict[str, list] = {name: [] for name in SCHEMA.names}
    for seq in range(5):
        for name, value in zip(SCHEMA.names, [seq, 1, "ws_recv", seq, seq, None, None, b"x", None, None], strict=True):
            rows[name].append(value)
    with open(path, "wb") as sink, ipc.new_stream(sink, SCHEMA.with_metadata(META.to_metadata(0))) as stream:
        stream.write_batch(pa.RecordBatch.from_pydict(rows, schema=SCHEMA))
    journal = JournalReader(path)
    assert sum(len(b) for b in journal) == 5 and journal.torn is None
    assert [e.seq for e in Recording(folder).iter_events()] == list(range(5))


def test_serve_and_replay_say_when_a_torn_batch_was_dropped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A crashed recording of the bundled fixture, its last flush torn: replay data carries the note and
    `harness replay` prints it once as a warning before it runs."""
    fixture = Recording(BUNDLED_FIXTURE)
    writer = RecordingWriter(tmp_path / "rec", fixture.meta, fsync=False)
    events = list(fixture.iter_events())
    for event in events[:-40]:
        writer.append_event(event)
    writer.flush(events[-41].recv_mono_ns)
    kept = (tmp_path / "rec" / segment_name(0, OPEN_SUFFIX)).stat().st_size
    for event in events[-40:]:
        writer.append_event(event)
    writer.flush(events[-1].recv_mono_ns)
    journal = tmp_path / "rec" / segment_name(0, OPEN_SUFFIX)
    crashed = crashed_copy(tmp_path, journal, journal.read_bytes()[: kept + 100])
    data = load_replay_data(crashed)
    assert len(data.notes) == 1 and f"offset {kept} dropped" in data.notes[0]
    report = run_replay(ReplayRequest("clean", recording=crashed, speed=0))
    assert capsys.readouterr().err.count("warning: segment-000000.arrows: the last batch is torn") == 1
    assert report["sync"]["divergent"] == 0
    writer.close()


def test_a_flipped_byte_anywhere_is_never_read_as_different_rows(tmp_path: Path) -> None:
    """Seeded flips of 1 to 3 bytes anywhere in a journal: the rows read are the written ones (all, or
    those before a torn last batch, with a note), or reading is one RecordingError; never other rows."""
    journal, _ = journal_of_three_batches(tmp_path / "rec")
    data = journal.read_bytes()
    written = [(e.seq, e.payload) for e in Recording(journal.parent).iter_events()]
    rng = random.Random(13)
    outcomes: Counter[str] = Counter()
    for _ in range(300):
        damaged = bytearray(data)
        for _ in range(rng.randint(1, 3)):
            damaged[rng.randrange(len(damaged))] ^= 1 << rng.randrange(8)
        crashed = crashed_copy(tmp_path, journal, bytes(damaged))
        try:
            recording = Recording(crashed)
            rows = [(e.seq, e.payload) for e in recording.iter_events()]
        except RecordingError:
            outcomes["error"] += 1
            continue
        assert rows == written[: len(rows)]
        if len(rows) == len(written):
            outcomes["whole"] += 1
        else:
            assert len(recording.notes) == 1 and "torn" in recording.notes[0]
            outcomes["torn"] += 1
    # Most flips land in a batch body and are caught; some hit padding or unused header bytes.
    assert outcomes["error"] + outcomes["torn"] > 150
