"""What the checker needs of the venue's writes, taken as each write happens.

`harness replay` hands `SendDigest.on_written` to the venue (a call per socket write), so by the time the subject
stops, the latency join's write times, the hole search's, the counts of frames sent, gaps and
reorders on the wire, the silence search's write times and the speed-0 clock's are built: the
check after the run reads no send log back (only a divergence's description does, for the few
frames around it: harness/divergence_context.py). `SendDigest.of_clients` reads a send log in hand
once instead (tests, callers of `harness.checker.check` with clients only).

What it keeps grows with write batches, frames written and depth frames: per depth frame its first
intact write and when that write was meant to go (16 bytes; the hole search and the latency join
need them per state); per socket write, its time (8 bytes, once for a batch of frames); and, only
when asked for the speed-0 clock, which batch first carried each frame (`FirstWrites`: a bit a
frame, 2 bytes a frame written, 8 bytes a batch), turned by `clock` into one point per batch.
"""

from __future__ import annotations

import heapq
from array import array
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import accumulate, islice
from typing import Protocol

from harness.deliveries import NEVER, Deliveries, SnapshotLike
from harness.oracle import DepthFrame
from replayer.venue_actions import Write

_GROW_BYTES = 1 << 13
"""Bytes (eight frames each) the written frames' bits grow by when a write goes past their end."""


class DepthIndex(Protocol):
    """The clean depth frames the checker knows (harness/oracle.py Oracle has this shape)."""

    def frame(self, index: int) -> DepthFrame | None: ...
    def depth_frame_ids(self) -> Iterator[DepthFrame]: ...


class SendLike(Protocol):
    """One server write (replayer/server.py SendRecord); an optional `fault` attribute naming the fault
    that produced the payload lets a corrupted frame count as not delivered."""

    @property
    def frame_index(self) -> int: ...
    @property
    def intended_mono_ns(self) -> int: ...
    @property
    def write_mono_ns(self) -> int: ...


class ClientLike(Protocol):
    """One connection the subject made and what the server wrote on it (replayer/server.py ClientRecord)."""

    @property
    def client_id(self) -> int: ...
    @property
    def sends(self) -> Iterable[SendLike]: ...


class SendDigest:
    """Feed every write with `add`, in the order the venue made them; then read what the checker asks.

    `frames`, the number of frames in the recording, keeps the speed-0 clock (`clock`); without it
    writes may come in any order (each connection's in its own order), as a send log read back has them.
    """

    __slots__ = (
        "_batch",
        "_high",
        "_indices",
        "_oracle",
        "_times",
        "_times_ascending",
        "depth_frames_sent",
        "first_intended",
        "first_write",
        "frames_sent",
        "gaps_injected",
        "out_of_order_sent",
        "written",
    )

    def __init__(self, oracle: DepthIndex, frames: int | None = None) -> None:
        self._oracle = oracle
        self._indices = array("q", (frame.index for frame in oracle.depth_frame_ids()))
        self.first_write = array("q", [NEVER]) * len(self._indices)
        """Per depth frame (in the oracle's order): the first write of it not mangled by a `corrupt*` fault."""
        self.first_intended = array("q", [0]) * len(self._indices)
        """When that write was meant to go (the latency join's `e2e_intended`)."""
        self.frames_sent = 0
        self.depth_frames_sent = 0
        self.gaps_injected = 0
        self.out_of_order_sent = 0
        self.written: Counter[str] = Counter()
        """Depth frames written per symbol (corrupted ones too)."""
        self._high: dict[tuple[int, str], int] = {}
        """Per (connection, symbol): the highest update id written to it, intact."""
        self._times = array("q")
        """Distinct write times, as they came (ascending unless `_times_ascending` is False)."""
        self._times_ascending = True
        self._batch = None if frames is None else FirstWrites(frames)
        """Which write (1 + its place in `_times`) first carried each frame, for the speed-0 clock."""

    @classmethod
    def of_clients(cls, oracle: DepthIndex, clients: Iterable[ClientLike]) -> SendDigest:
        """The digest of a send log in hand: each connection's writes, read once."""
        digest = cls(oracle)
        for client in clients:
            for send in client.sends:
                digest.add(
                    client.client_id,
                    send.frame_index,
                    send.intended_mono_ns,
                    send.write_mono_ns,
                    getattr(send, "fault", None),
                )
        return digest

    def add(
        self, client_id: int, frame_index: int, intended_mono_ns: int, write_mono_ns: int, fault: str | None = None
    ) -> None:
        """Frame `frame_index` was written to connection `client_id` at `write_mono_ns`; `fault` is the
        fault that made its payload (a `corrupt*` one means the subject could not use it)."""
        self.add_write(client_id, write_mono_ns, [(frame_index, intended_mono_ns, fault)])

    def add_write(self, client_id: int, write_mono_ns: int, frames: Sequence[tuple[int, int, str | None]]) -> None:
        """`add` for every frame of one socket write, in the order written: (frame index, intended,
        fault) each. The venue's hot path: the write's time is taken once, and a frame that is not a
        depth frame costs a bisection and a bit."""
        times = self._times
        if not times or write_mono_ns > times[-1]:
            times.append(write_mono_ns)
        elif write_mono_ns < times[-1]:
            if self._batch is not None:
                raise ValueError(
                    f"writes must come in time order for the speed-0 clock: {write_mono_ns} after {times[-1]}"
                )
            times.append(write_mono_ns)
            self._times_ascending = False
        if self._batch is not None:
            self._batch.add(client_id, [frame[0] for frame in frames], len(times))
        self.frames_sent += len(frames)
        indices = self._indices
        count = len(indices)
        for frame_index, intended_mono_ns, fault in frames:
            place = bisect_left(indices, frame_index)
            if place < count and indices[place] == frame_index:
                self._depth_written(client_id, place, frame_index, intended_mono_ns, write_mono_ns, fault)

    def _depth_written(
        self, client_id: int, place: int, frame_index: int, intended_mono_ns: int, write_mono_ns: int, fault: str | None
    ) -> None:
        frame = self._oracle.frame(frame_index)
        assert frame is not None, "the oracle's depth frames are the ones indexed here"
        self.depth_frames_sent += 1
        self.written[frame.symbol] += 1
        if fault is not None and fault.startswith("corrupt"):
            return
        if write_mono_ns < self.first_write[place]:
            self.first_write[place] = write_mono_ns
            self.first_intended[place] = intended_mono_ns
        stream = (client_id, frame.symbol)
        top = self._high.get(stream)
        if top is not None:
            if frame.last_update_id <= top:
                self.out_of_order_sent += 1
                return
            if not frame.follows(top):
                self.gaps_injected += 1
        self._high[stream] = frame.last_update_id

    def on_written(self, client_id: int, writes: Sequence[Write], write_mono_ns: int) -> None:
        """`add_write`, in the shape of the venue's `on_written` (replayer/server.py): one call per
        socket write."""
        frames = []
        for write in writes:
            entry = write.entry
            if entry is None:
                raise ValueError("on_written takes recorded frames: Writes with their entry")
            frames.append((entry.frame.index, write.intended_mono_ns, entry.fault))
        self.add_write(client_id, write_mono_ns, frames)

    def deliveries(self, snapshots: Iterable[SnapshotLike]) -> Deliveries:
        """The hole search's index over the oracle's depth frames, from the writes kept here."""
        return Deliveries.of_first_writes(self._oracle.depth_frame_ids(), self.first_write, snapshots)

    def write_times(self) -> array:
        """Every distinct time anything was written to the subject, ascending (8 bytes a write batch)."""
        if self._times_ascending:
            return self._times
        return array("q", sorted(set(self._times)))

    def clock(self, offsets: Callable[[], Iterable[int]]) -> WriteClock:
        """`harness.checker.send_log_clock` from the writes kept here: `offsets()` gives every frame's
        offset_ns in index order (called again only if the offsets go back)."""
        if self._batch is None:
            if self.frames_sent:
                raise ValueError("the speed-0 clock needs SendDigest(oracle, frames=...) before the writes")
            return clock_of(lambda: ())
        batch, times = self._batch, self._times
        if batch.in_order():
            try:
                return clock_of(lambda: ((offset, times[first - 1]) for offset, first in batch.run_ends(offsets())))
            except OffsetsWentBack:
                pass  # every frame's point, sorted
        return clock_of(lambda: ((offset, times[first - 1]) for offset, first in batch.with_offsets(offsets())))


class OffsetsWentBack(ValueError):
    """`FirstWrites.run_ends` met an offset below the one before it: the clock needs every frame's point."""


class FirstWrites:
    """Which write batch first carried each frame: a bit a frame says whether any write did; each
    connection's first writes of frames above the highest it first wrote before (nearly all: a venue
    walks its frames in order) are kept as the gaps between their indexes (2 bytes a frame written)
    and runs of one batch (8 bytes a run); a frame first written below that (a reorder, a delay) is
    kept on its own (12 bytes)."""

    __slots__ = ("_bits", "_count", "_late_batches", "_late_indices", "_streams")

    def __init__(self, frames: int) -> None:
        self._count = frames
        self._bits = bytearray()
        self._streams: dict[int, _Ascending] = {}
        self._late_indices = array("q")
        self._late_batches = array("I")

    def add(self, client_id: int, indices: Iterable[int], batch: int) -> None:
        """`batch` (from 1, never going back) carried frames `indices`, in this order, to connection
        `client_id`."""
        bits, count = self._bits, self._count
        stream = self._streams.get(client_id)
        firsts: list[int] = []
        top = -1 if stream is None else stream.top
        for index in indices:
            if not 0 <= index < count:
                continue
            byte, bit = index >> 3, 1 << (index & 7)
            if byte >= len(bits):
                bits.extend(bytes(max(_GROW_BYTES, byte + 1 - len(bits))))
            if bits[byte] & bit:
                continue  # written before, so earlier
            bits[byte] |= bit
            if index > top:
                firsts.append(index)
                top = index
            else:
                self._late_indices.append(index)
                self._late_batches.append(batch)
        if firsts:
            if stream is None:
                stream = self._streams[client_id] = _Ascending()
            stream.add(firsts, batch)

    def in_order(self) -> bool:
        """Whether one connection first wrote every frame written, in index order (a replay at speed 0
        to one client): then `run_ends` gives what the clock keeps."""
        return len(self._streams) <= 1 and not self._late_indices

    def run_ends(self, offsets: Iterable[int]) -> Iterator[tuple[int, int]]:
        """When `in_order`: (offset_ns, batch) of the last frame of each run first written by one batch,
        in index order. The clock made of these is the one `with_offsets` gives (a batch's frames are
        one point, at the last one's offset, since offsets never go back), at a Python step per frame
        instead of a few calls; OffsetsWentBack if they do go back."""
        if not self.in_order():
            raise ValueError("run_ends needs the first writes of one connection, in index order")
        ends = (end for stream in self._streams.values() for end in stream.run_ends())
        target, batch = next(ends, (-1, 0))
        before = -(2**63)
        for index, offset in enumerate(offsets):
            if target < 0:
                return
            if offset < before:
                raise OffsetsWentBack(f"frame {index}'s offset {offset} is below the one before, {before}")
            before = offset
            if index == target:
                yield offset, batch
                target, batch = next(ends, (-1, 0))

    def with_offsets(self, offsets: Iterable[int]) -> Iterator[tuple[int, int]]:
        """(offset_ns, batch) of every frame written, in index order; `offsets`: every frame's, in order."""
        late = self._late_indices
        order = sorted(range(len(late)), key=late.__getitem__)
        lates = ((late[k], self._late_batches[k]) for k in order)
        at, offset, every = -1, 0, iter(offsets)
        for index, batch in heapq.merge(*self._streams.values(), lates):
            while at < index:
                offset = next(every)
                at += 1
            yield offset, batch


class _Ascending:
    """One connection's first writes in ascending index order: index gaps and batch runs."""

    __slots__ = ("far", "gaps", "run_batches", "run_counts", "top")

    def __init__(self) -> None:
        self.top = -1
        self.gaps = array("H")
        """Each index minus the one before (0: the gap is in `far`)."""
        self.far = array("q")
        self.run_counts = array("I")
        self.run_batches = array("I")

    def add(self, indices: Sequence[int], batch: int) -> None:
        """`indices`, ascending and above `top`, all first carried by `batch`."""
        gaps, top = self.gaps, self.top
        for index in indices:
            gap = index - top
            if gap < 1 << 16:
                gaps.append(gap)
            else:
                gaps.append(0)
                self.far.append(gap)
            top = index
        self.top = top
        if self.run_batches and self.run_batches[-1] == batch:
            self.run_counts[-1] += len(indices)
        else:
            self.run_counts.append(len(indices))
            self.run_batches.append(batch)

    def run_ends(self) -> Iterator[tuple[int, int]]:
        """(index, batch) of the last frame of each batch run."""
        far = iter(self.far)
        written = accumulate(self.gaps if not self.far else (gap or next(far) for gap in self.gaps), initial=-1)
        next(written)
        for count, batch in zip(self.run_counts, self.run_batches, strict=True):
            yield next(islice(written, count - 1, None)), batch

    def __iter__(self) -> Iterator[tuple[int, int]]:
        index, far, runs = -1, iter(self.far), zip(self.run_counts, self.run_batches, strict=True)
        left, batch = 0, 0
        for gap in self.gaps:
            index += gap or next(far)
            if not left:
                left, batch = next(runs)
            left -= 1
            yield index, batch


class WriteClock:
    """Replay offset -> when the server wrote the first clean frame due at or after it (`__call__`);
    an offset after every write maps past the last one. One point per run of offsets first written at
    the same time (a write batch), 16 bytes each."""

    __slots__ = ("_last", "_offsets", "_times")

    def __init__(self, offsets: array, times: array, last: int) -> None:
        self._offsets, self._times, self._last = offsets, times, last

    def __call__(self, offset_ns: int) -> int:
        i = bisect_left(self._offsets, offset_ns)
        return self._times[i] if i < len(self._times) else self._last + 1

    def __len__(self) -> int:
        """Points kept."""
        return len(self._times)


def clock_of(points: Callable[[], Iterable[tuple[int, int]]]) -> WriteClock:
    """The clock from (offset_ns, first write) of every frame written, in frame index order (`points()`
    is called a second time only when the offsets go back, which a replay's never do)."""
    offsets, times = array("q"), array("q")
    last = 0
    for offset, when in points():
        last = max(last, when)
        if offsets and offset <= offsets[-1]:
            if offset < offsets[-1]:
                offsets, times, last = _sorted_points(points())
                break
            times[-1] = min(times[-1], when)  # one point per offset: the earliest write then
            continue
        _merge_closed(offsets, times)
        offsets.append(offset)
        times.append(when)
    _merge_closed(offsets, times)
    return WriteClock(offsets, times, last)


def _merge_closed(offsets: array, times: array) -> None:
    """The point before the last, closed, answers as the last does when their times are equal: the
    last takes its place (offsets in between map to the same write either way)."""
    if len(times) >= 2 and times[-2] == times[-1]:
        offsets[-2] = offsets[-1]
        offsets.pop()
        times.pop()


def _sorted_points(points: Iterable[tuple[int, int]]) -> tuple[array, array, int]:
    """The slow way, for offsets out of order: every point sorted, the earliest write per offset."""
    offsets, times = array("q"), array("q")
    last = 0
    for offset, when in sorted(points):
        last = max(last, when)
        if offsets and offsets[-1] == offset:
            continue
        _merge_closed(offsets, times)
        offsets.append(offset)
        times.append(when)
    _merge_closed(offsets, times)
    return offsets, times, last
