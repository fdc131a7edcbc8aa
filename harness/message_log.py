"""The subject's reports, kept on disk in arrival order until the checker reads them after the run.

The checker judges after the run (a few of its answers need the future: whether a frame missing when
a book was applied reached the subject later, whether any snapshot was ever served, where a fault
window falls on the speed-0 clock), so every report is kept until then. A report is parsed once, as
it arrives (to check it and to see the subject catch up); what the checker will need of it is decided
then:

- an observation whose top 20 the oracle already compared and found equal on arrival
  (`harness.checker.TopJudge`), or one that does not claim synced, keeps only its symbol, update id,
  synced flag and stamps, packed in 44 bytes: its levels are never looked at again, and it comes
  back as a `harness.checker.AgreedObservation` (or a plain BookObservation without levels);
- anything else (an event, a final book, an observation that differs from the oracle or is at an id
  the oracle does not know: the checker still has to describe it) keeps its wire line and is parsed
  again when read.

Records are gathered into chunks, compressed at zlib's fastest level (neighbouring records share most
of their bytes) and written to a temporary file (in memory up to SPILL_BYTES, a real file past that), read back
sequentially: memory stays
flat however long the run; the disk holds a few bytes per report.
"""

from __future__ import annotations

import struct
import tempfile
import zlib
from collections.abc import Callable, Iterator

from harness.checker import AgreedObservation
from harness.observations import BookObservation, SubjectMessage, loads

CHUNK_BYTES = 256 * 1024
"""Records gathered before they are compressed together (zlib's window is 32 KB, so bigger gains little)."""
SPILL_BYTES = 4 << 20
"""Compressed chunks kept in memory before they go to a real temporary file (a short run never opens one)."""

_PACKED = struct.Struct("<cHq?qqqq")
"""b"a" (agreed) or b"u" (unsynced), symbol number, update id, synced, the four stamps."""
_LINE = struct.Struct("<cI")
"""b"l", the length of the wire line that follows."""
_CHUNK = struct.Struct("<I")
"""The length of the compressed chunk that follows, in the file."""
_MAX_SYMBOLS = 2**16


class MessageLog:
    """The subject's well-formed reports in arrival order; `agrees` is the oracle's verdict on arrival."""

    __slots__ = ("_agrees", "_count", "_file", "_pending", "_symbol_names", "_symbols")

    def __init__(self, agrees: Callable[[BookObservation], bool] | None = None) -> None:
        self._agrees = agrees
        self._pending = bytearray()
        self._file: tempfile.SpooledTemporaryFile[bytes] | None = None
        self._symbols: dict[str, int] = {}
        self._symbol_names: list[str] = []
        self._count = 0

    def append(self, line: bytes, message: SubjectMessage) -> None:
        """Keeps `message`, read from `line` (one line, no newline, that `observations.loads` read)."""
        self._count += 1
        pending = self._pending
        if type(message) is BookObservation:
            if not message.synced:
                packed = self._pack(b"u", message)
            elif self._agrees is not None and self._agrees(message):
                packed = self._pack(b"a", message)
            else:
                packed = None
            if packed is not None:
                pending += packed
                if len(pending) >= CHUNK_BYTES:
                    self._seal()
                return
        pending += _LINE.pack(b"l", len(line))
        pending += line
        if len(pending) >= CHUNK_BYTES:
            self._seal()

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[SubjectMessage]:
        if self._file is not None:
            self._file.seek(0)
            while head := self._file.read(_CHUNK.size):
                (size,) = _CHUNK.unpack(head)
                yield from self._records(zlib.decompress(self._file.read(size)))
            self._file.seek(0, 2)
        yield from self._records(bytes(self._pending))

    def close(self) -> None:
        """Gives the disk back; the log is empty afterwards."""
        if self._file is not None:
            self._file.close()
            self._file = None
        self._pending = bytearray()
        self._count = 0

    def _pack(self, kind: bytes, obs: BookObservation) -> bytes | None:
        number = self._symbols.get(obs.symbol)
        if number is None:
            if len(self._symbol_names) >= _MAX_SYMBOLS:
                return None
            number = self._symbols[obs.symbol] = len(self._symbol_names)
            self._symbol_names.append(obs.symbol)
        try:
            return _PACKED.pack(
                kind,
                number,
                obs.update_id,
                obs.synced,
                obs.recv_mono_ns,
                obs.parsed_mono_ns,
                obs.dequeued_mono_ns,
                obs.applied_mono_ns,
            )
        except struct.error:  # an id or stamp beyond 64 bits: kept as its line
            return None

    def _records(self, data: bytes) -> Iterator[SubjectMessage]:
        names = self._symbol_names
        at = 0
        while at < len(data):
            kind = data[at : at + 1]
            if kind == b"l":
                _, size = _LINE.unpack_from(data, at)
                at += _LINE.size
                yield loads(data[at : at + size])
                at += size
                continue
            _, number, update_id, synced, recv, parsed, dequeued, applied = _PACKED.unpack_from(data, at)
            at += _PACKED.size
            cls = AgreedObservation if kind == b"a" else BookObservation
            yield cls(names[number], update_id, synced, (), (), recv, parsed, dequeued, applied)

    def _seal(self) -> None:
        if self._file is None:
            self._file = tempfile.SpooledTemporaryFile(SPILL_BYTES, prefix="harness-reports-")  # noqa: SIM115 (closed by close())
        compressed = zlib.compress(self._pending, 1)
        self._file.write(_CHUNK.pack(len(compressed)))
        self._file.write(compressed)
        self._pending = bytearray()
