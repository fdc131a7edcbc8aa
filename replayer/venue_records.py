"""What the fake venue keeps about what it did, for the checker and the report.

Filled by the pure core (replayer/venue_core.py) from what the shell tells it happened: a frame handed
to a socket, a connection closed, a REST snapshot delivered. Timestamps are the shell's monotonic clock.
"""

from __future__ import annotations

import struct
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class SendRecord:
    """One frame written to one client: intended = clock start + offset / speed; write = handed to the socket.

    `fault` is the Send's fault (a corrupted or duplicated payload), None for a clean frame.
    """

    frame_index: int
    stream: str
    last_update_id: int | None
    intended_mono_ns: int
    write_mono_ns: int
    fault: str | None = None


SEND_BLOCK_BYTES = 1 << 20
"""Packed sends gathered in memory before they go to the log's temporary file."""
SPILL_BYTES = 4 << 20
"""Packed sends a log's temporary file holds in memory before it becomes a real file (a short run never opens one)."""

_SEND = struct.Struct("<qqqqHH")
"""frame index, last update id (or _NO_ID), intended, write, stream number, fault number (0: none)."""
_NO_ID = -(2**63)


class SendLog:
    """One client's `SendRecord`s in write order, packed (36 bytes a send) and spilled a megabyte at a
    time to a temporary file (in memory up to SPILL_BYTES, a real file past that), so the harness's
    memory does not grow with the replay; read back sequentially (the checker reads it a few times
    after the run) as SendRecords again.

    A list in all the ways the checker and tests use one: append, iterate, len, compare."""

    __slots__ = ("_count", "_file", "_names", "_numbers", "_pending")

    def __init__(self, records: Iterable[SendRecord] = ()) -> None:
        self._pending = bytearray()
        self._file: tempfile.SpooledTemporaryFile[bytes] | None = None
        self._numbers: dict[str | None, int] = {None: 0}
        self._names: list[str | None] = [None]
        self._count = 0
        for record in records:
            self.append(record)

    def append(self, record: SendRecord) -> None:
        r = record
        self.extend_rows([(r.frame_index, r.stream, r.last_update_id, r.intended_mono_ns, r.write_mono_ns, r.fault)])

    def extend_rows(self, rows: Iterable[tuple[int, str, int | None, int, int, str | None]]) -> None:
        """Appends a SendRecord per row of its fields, in their order (frame index, stream, last update
        id, intended, write, fault): a socket write's frames at once, without a record made per frame."""
        numbers, pending, pack = self._numbers, self._pending, _SEND.pack
        for index, name, last, intended, write, fault_name in rows:
            stream = numbers.get(name)
            if stream is None:
                stream = numbers[name] = len(self._names)
                self._names.append(name)
            fault = numbers.get(fault_name)
            if fault is None:
                fault = numbers[fault_name] = len(self._names)
                self._names.append(fault_name)
            pending += pack(index, _NO_ID if last is None else last, intended, write, stream, fault)
            self._count += 1
        if len(pending) >= SEND_BLOCK_BYTES:
            if self._file is None:
                self._file = tempfile.SpooledTemporaryFile(SPILL_BYTES, prefix="harness-sends-")  # noqa: SIM115 (closed by close())
            self._file.write(pending)
            self._pending = bytearray()

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[SendRecord]:
        if self._file is not None:
            self._file.seek(0)
            whole = SEND_BLOCK_BYTES - SEND_BLOCK_BYTES % _SEND.size
            while block := self._file.read(whole):
                yield from self._records(block)
            self._file.seek(0, 2)
        yield from self._records(bytes(self._pending))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, SendLog | list):
            return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"SendLog({self._count} sends)"

    def close(self) -> None:
        """Gives the disk back; the log is empty afterwards."""
        if self._file is not None:
            self._file.close()
            self._file = None
        self._pending = bytearray()
        self._count = 0

    def _records(self, block: bytes) -> Iterator[SendRecord]:
        names = self._names
        for index, last, intended, write, stream, fault in _SEND.iter_unpack(block):
            yield SendRecord(index, names[stream], None if last == _NO_ID else last, intended, write, names[fault])


@dataclass(frozen=True, slots=True)
class SnapshotRecord:
    """One REST depth answer served: the book a client may start its chain from (the checker's hole search),
    with its top levels, best first.

    A served `lastUpdateId` usually falls inside a depth event, where the clean recording has no book;
    the checker judges a subject's book at such an id against what the venue said it was.
    """

    symbol: str
    last_update_id: int
    served_mono_ns: int
    bids: tuple[tuple[str, str], ...] = ()
    asks: tuple[tuple[str, str], ...] = ()


@dataclass(slots=True)
class ClientRecord:
    """A connection's life, kept after it closes; match it to a subject by `peer` (the client's address)."""

    client_id: int
    path: str
    peer: tuple | None
    opened_mono_ns: int
    closed_mono_ns: int | None = None
    close_cause: str | None = None
    sends: SendLog = field(default_factory=SendLog)


@dataclass(slots=True)
class ServerStats:
    """Counts for the report; `rest_requests` is keyed `endpoint:status`, `rest_faults` by behaviour mode.

    `connections_refused` counts handshakes refused because the venue held its maximum of connections
    (`streams_refused`: SUBSCRIBEs refused past the streams-per-connection limit).
    """

    entries_walked: int = 0
    frames_sent: int = 0
    bytes_sent: int = 0
    clients_connected: int = 0
    clients_open: int = 0
    handshakes_refused: int = 0
    half_open_connections: int = 0
    slow_consumers_dropped: int = 0
    too_many_requests: int = 0
    connections_refused: int = 0
    streams_refused: int = 0
    disconnects: Counter = field(default_factory=Counter)
    rest_requests: Counter = field(default_factory=Counter)
    rest_faults: Counter = field(default_factory=Counter)
