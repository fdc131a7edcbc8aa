"""Recording format v1: the one schema every producer writes and every consumer reads.

A recording is a folder of segment files. Sealed segments are Parquet (zstd); the segment that was
open when a recorder died is an Arrow IPC stream, readable up to its last flushed batch. Rows are
events in `seq` order. docs/recording-format.md is the prose version of this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import pyarrow as pa

FORMAT_VERSION = 1
SEALED_SUFFIX = ".parquet"
OPEN_SUFFIX = ".arrows"
SEGMENT_STEM = "segment-"


class EventKind(StrEnum):
    WS_RECV = "ws_recv"
    WS_SEND = "ws_send"
    WS_OPEN = "ws_open"
    WS_CLOSE = "ws_close"
    HTTP_REQUEST = "http_request"
    HTTP_RESPONSE = "http_response"


SCHEMA = pa.schema(
    [
        pa.field("seq", pa.int64(), nullable=False),
        pa.field("conn_id", pa.int32(), nullable=False),
        pa.field("kind", pa.dictionary(pa.int8(), pa.string()), nullable=False),
        pa.field("recv_wall_ns", pa.int64(), nullable=False),
        pa.field("recv_mono_ns", pa.int64(), nullable=False),
        pa.field("url", pa.dictionary(pa.int32(), pa.string())),
        pa.field("stream", pa.dictionary(pa.int32(), pa.string())),
        pa.field("payload", pa.binary(), nullable=False),
        pa.field("status", pa.int32()),
        pa.field("reason", pa.string()),
    ]
)

META_PREFIX = "harness."


@dataclass(frozen=True, slots=True)
class RecordedEvent:
    """One row. `payload` is the wire bytes; `status` is an HTTP status or a WebSocket close code."""

    seq: int
    conn_id: int
    kind: EventKind
    recv_wall_ns: int
    recv_mono_ns: int
    url: str | None
    stream: str | None
    payload: bytes
    status: int | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class RecordingMeta:
    """What a recording says about itself, stored in every segment's file metadata."""

    venue: str
    symbols: tuple[str, ...]
    tool_version: str
    start_wall_ns: int
    source: str
    recording_id: str
    format_version: int = FORMAT_VERSION

    def to_metadata(self, segment_index: int) -> dict[bytes, bytes]:
        fields = {
            "format_version": str(self.format_version),
            "venue": self.venue,
            "symbols": ",".join(self.symbols),
            "tool_version": self.tool_version,
            "start_wall_ns": str(self.start_wall_ns),
            "source": self.source,
            "recording_id": self.recording_id,
            "segment_index": str(segment_index),
        }
        return {(META_PREFIX + k).encode(): v.encode() for k, v in fields.items()}

    @classmethod
    def from_metadata(cls, raw: dict[bytes, bytes] | None) -> RecordingMeta:
        """Raises KeyError or ValueError when the metadata is not ours; the reader turns that into one line."""
        fields = {
            k.decode()[len(META_PREFIX) :]: v.decode()
            for k, v in (raw or {}).items()
            if k.startswith(META_PREFIX.encode())
        }
        return cls(
            venue=fields["venue"],
            symbols=tuple(s for s in fields["symbols"].split(",") if s),
            tool_version=fields["tool_version"],
            start_wall_ns=int(fields["start_wall_ns"]),
            source=fields["source"],
            recording_id=fields["recording_id"],
            format_version=int(fields["format_version"]),
        )


def segment_name(index: int, suffix: str) -> str:
    return f"{SEGMENT_STEM}{index:06d}{suffix}"
