"""The subject's reports kept as the lines it sent, compressed, and read back as messages when judged.

A parsed `BookObservation` holds 40 level tuples and 80 strings, about 7 KB; its orjson line is
about 1 KB, and consecutive lines repeat most of their levels, so zlib at its fastest level keeps
them in a few hundred bytes. A run keeps every report until the checker reads them after the run
(it needs the whole send log first), so the harness keeps the lines, which every report was already
parsed and checked from once, in compressed chunks, and parses each again as the checker reads it:
the same messages in about a twentieth of the memory, for some 20 us of CPU per line.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator

from harness.observations import SubjectMessage, loads

CHUNK_BYTES = 256 * 1024
"""Lines gathered before they are compressed together (zlib's window is 32 KB, so bigger gains little)."""


class MessageLog:
    """The subject's well-formed reports in arrival order, as their wire lines (`observations.dumps`)."""

    __slots__ = ("_chunks", "_count", "_pending", "_pending_bytes")

    def __init__(self) -> None:
        self._chunks: list[bytes] = []
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._count = 0

    def append(self, line: bytes) -> None:
        """Keeps `line`, one line (no newline in it) that `observations.loads` has read without error."""
        if b"\n" in line:
            raise ValueError("a message line holds no newline")
        self._pending.append(line)
        self._pending_bytes += len(line) + 1
        self._count += 1
        if self._pending_bytes >= CHUNK_BYTES:
            self._seal()

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[SubjectMessage]:
        for chunk in self._chunks:
            for line in zlib.decompress(chunk).split(b"\n"):
                yield loads(line)
        for line in list(self._pending):
            yield loads(line)

    def _seal(self) -> None:
        self._chunks.append(zlib.compress(b"\n".join(self._pending), 1))
        self._pending = []
        self._pending_bytes = 0
