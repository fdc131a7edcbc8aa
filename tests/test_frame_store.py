"""The replay's frames read from the recording on demand (replayer/frame_store.py), without sockets.

The same recorded events cut into chunks every way a recording can hold them (one chunk in memory,
many row groups, several segments, a crashed recorder's journals) must give the same frames by index,
by slice and by walking them, and a walk in order must read each chunk once.
"""

from __future__ import annotations

import random
import shutil
import threading
from pathlib import Path

import pytest

from recorder.format import OPEN_SUFFIX, EventKind, RecordedEvent
from recorder.segments import RecordingWriter
from replayer import frame_store
from replayer.frame_store import FrameStore
from replayer.reader import Recording
from replayer.replay_data import ReplayData, build_replay_data, load_replay_data
from replayer.timeline import Frame

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "binance_spot_btcusdt_synth"
ROWS = 97
"""Rows per row group in the rewritten recordings: chunk boundaries fall everywhere, mid-event too."""
EVENTS = 1_000


@pytest.fixture(scope="module")
def events() -> list[RecordedEvent]:
    return list(Recording(FIXTURE).iter_events())[:EVENTS]


@pytest.fixture(scope="module")
def in_memory(events: list[RecordedEvent]) -> ReplayData:
    return build_replay_data(events, Recording(FIXTURE).symbols)


@pytest.fixture(scope="module")
def expected(in_memory: ReplayData) -> list[Frame]:
    return list(in_memory.frames)


def _rewrite(events: list[RecordedEvent], folder: Path, *, segment_bytes: int, close: bool = True) -> Path:
    writer = RecordingWriter(folder, Recording(FIXTURE).meta, rows_per_group=ROWS, fsync=False,
                             segment_max_bytes=segment_bytes, flush_interval_ns=1 << 62)  # fmt: skip
    for event in events:
        writer.append_event(event)
    if close:
        writer.close()
        return folder
    writer.flush()
    crashed = folder.with_name(folder.name + "-crashed")  # as kill -9 would leave it
    shutil.copytree(folder, crashed)
    writer.close()
    return crashed


@pytest.fixture(scope="module")
def segmented(events: list[RecordedEvent], tmp_path_factory: pytest.TempPathFactory) -> ReplayData:
    folder = _rewrite(events, tmp_path_factory.mktemp("segmented") / "rec", segment_bytes=30_000)
    assert len(Recording(folder).segments) >= 3
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(frame_store, "BLOCK_FRAMES", ROWS)  # a block a row group: chunk boundaries everywhere
        return load_replay_data(folder)


def test_frames_are_the_recorded_stream_frames_from_the_start_on(
    events: list[RecordedEvent], in_memory: ReplayData, expected: list[Frame]
) -> None:
    received = [e for e in events if e.kind is EventKind.WS_RECV and e.stream][in_memory.skipped_frames :]
    assert [f.payload for f in expected] == [e.payload for e in received]
    assert [f.stream for f in expected] == [e.stream for e in received]
    assert [f.index for f in expected] == list(range(len(received)))
    offsets = [f.offset_ns for f in expected]
    assert offsets[0] == 0 and offsets == sorted(offsets)
    assert offsets[-1] == received[-1].recv_mono_ns - received[0].recv_mono_ns == in_memory.duration_ns
    depth = [f.index for f in expected if f.last_update_id is not None]
    assert list(in_memory.depth_indexes["BTCUSDT"]) == depth and depth


def test_several_segments_of_small_row_groups_give_the_same_frames(
    segmented: ReplayData, expected: list[Frame]
) -> None:
    store = segmented.frames
    assert isinstance(store, FrameStore) and len(store) == len(expected)
    assert list(store) == expected
    assert store.blocks_read > len(expected) // ROWS // 2  # many blocks, each read once by the walk
    rng = random.Random(5)
    for index in [0, len(expected) - 1, *(rng.randrange(len(expected)) for _ in range(200))]:
        assert store[index] == expected[index]
        assert store[index - len(expected)] == expected[index]
    for start, stop, step in [(0, 5, 1), (90, 300, 1), (150, 160, 3), (-40, None, 1), (None, None, 97), (7, 7, 1)]:
        assert store[start:stop:step] == expected[start:stop:step]
    with pytest.raises(IndexError):
        store[len(expected)]


def test_a_walk_reads_each_chunk_once_and_looks_back_from_memory(
    events: list[RecordedEvent], expected: list[Frame], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(frame_store, "FRAMES_CACHED", 4 * ROWS)
    monkeypatch.setattr(frame_store, "BLOCK_FRAMES", ROWS)
    store = load_replay_data(_rewrite(events, tmp_path / "rec", segment_bytes=1 << 30)).frames
    assert isinstance(store, FrameStore)
    before = store.blocks_read  # loading read the first few again (symbol specs)
    walked = 0
    for frame in store:
        walked += 1
        if frame.index % 50 == 0 and frame.index >= 2 * ROWS:
            assert store[frame.index - 2 * ROWS] == expected[frame.index - 2 * ROWS]  # a look-back
    read = store.blocks_read - before
    assert walked == len(expected) and store.blocks - 4 <= read <= store.blocks
    assert store.blocks >= len(expected) // ROWS
    assert store[0] == expected[0] and store.blocks_read == before + read + 1  # evicted long ago: read again


def test_small_row_groups_are_read_in_blocks_and_give_the_same_frames_and_offsets(
    events: list[RecordedEvent], expected: list[Frame], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(frame_store, "BLOCK_FRAMES", 4 * ROWS)
    folder = _rewrite(events, tmp_path / "rec", segment_bytes=1 << 30)
    groups = len(list(Recording(folder).iter_chunks(["seq"])))
    store = load_replay_data(folder).frames
    assert isinstance(store, FrameStore)
    assert groups >= 10 and store.blocks <= groups // 3  # about four row groups a block
    assert list(store.offsets()) == [f.offset_ns for f in expected]  # read without the payloads
    before = store.blocks_read
    assert list(store) == expected and store.blocks_read - before <= store.blocks
    assert list(store.offsets()) == [f.offset_ns for f in expected]  # from the blocks kept decoded


def test_a_crashed_recorders_journals_read_like_sealed_segments(
    events: list[RecordedEvent], expected: list[Frame], tmp_path: Path
) -> None:
    crashed = _rewrite(events, tmp_path / "rec", segment_bytes=1 << 30, close=False)
    # The journal, and the segment's Parquet file in the making (`.tmp`), which readers ignore.
    assert {p.suffix for p in crashed.iterdir()} == {OPEN_SUFFIX, ".tmp"}
    store = load_replay_data(crashed).frames
    assert list(store) == expected
    backwards = [store[i] for i in range(len(expected) - 1, -1, -(ROWS // 2))]  # behind the journal's cursor
    assert backwards == expected[::-1][:: ROWS // 2]


def test_a_blocks_frames_are_made_a_slice_at_a_time_and_read_alike_every_way(
    expected: list[Frame], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(frame_store, "MADE_AT_ONCE", 7)
    made = iter(expected[:100])
    lazy = frame_store.LazyFrames(100, made, threading.Lock())
    assert lazy[3] == expected[3] and len(lazy._frames) == 7  # one slice made, not the block
    assert lazy[-1] == expected[99] and len(lazy._frames) == 100
    fresh = frame_store.LazyFrames(100, iter(expected[:100]), threading.Lock())
    for part in (slice(None, -5), slice(10, 20), slice(None, None, -3), slice(-30, None, 4), slice(50, 40)):
        assert fresh[part] == expected[:100][part], part
    assert list(frame_store.LazyFrames(100, iter(expected[:100]), threading.Lock())) == expected[:100]
    short = frame_store.LazyFrames(100, iter(expected[:60]), threading.Lock())
    with pytest.raises(ValueError, match="made 60 frames of the 100"):
        short[80]
