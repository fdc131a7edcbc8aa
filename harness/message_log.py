"""The subject's reports kept as the lines it sent, and read back as messages when judged.

A parsed `BookObservation` holds 40 level tuples and 80 strings, about 7 KB; its orjson line is
about 1 KB. A run keeps every report until the checker reads them after the run (it needs the whole
send log first), so the harness keeps the lines, which every report was already parsed and checked
from once, and parses each again as the checker reads it: the same messages, an eighth of the memory.
"""

from __future__ import annotations

from collections.abc import Iterator

from harness.observations import SubjectMessage, loads


class MessageLog:
    """The subject's well-formed reports in arrival order, as their wire lines (`observations.dumps`)."""

    __slots__ = ("_lines",)

    def __init__(self) -> None:
        self._lines: list[bytes] = []

    def append(self, line: bytes) -> None:
        """Keeps `line`, which `observations.loads` has read without error."""
        self._lines.append(line)

    def __len__(self) -> int:
        return len(self._lines)

    def __iter__(self) -> Iterator[SubjectMessage]:
        for line in self._lines:
            yield loads(line)
