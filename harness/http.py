"""A minimal HTTP/1.1 GET on asyncio streams, for REST snapshots (the recorder, the default subject).

Why not urllib in a thread: a request in flight when the user presses Ctrl-C, or when a replay
stops, must be cancellable, and its response must be stamped on the event loop's own clock reads,
next to the frames. Why not a new dependency: one GET with `Connection: close` is all a snapshot
needs. The body comes back as the exact bytes the server sent (chunked transfer decoded, no content
decoding asked for).
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

MAX_HEADER_LINES = 100


class HttpError(OSError):
    """The server could not be reached or answered something that is not HTTP/1.x."""


@dataclass(frozen=True, slots=True)
class HttpResponse:
    status: int
    reason: str
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)
    """Names lower-cased (a REST client reads `retry-after` and Binance's `x-mbx-used-weight-1m`)."""


async def http_get(
    url: str, *, user_agent: str, timeout_s: float = 10.0, headers: Sequence[tuple[str, str]] = ()
) -> HttpResponse:
    """GETs `url` on a fresh connection; raises HttpError (an OSError) when there is no HTTP answer.

    `headers` go out as given (an API key header, say); a name or value holding CR or LF is a bug in
    the caller and raises ValueError before anything is sent.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise HttpError(f"not an http(s) URL: {url}")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    host_header = parts.hostname if parts.port is None else f"{parts.hostname}:{parts.port}"
    context = ssl.create_default_context() if parts.scheme == "https" else None
    extra = ""
    for name, value in headers:
        if any(c in name + value for c in "\r\n") or not name:
            raise ValueError(f"HTTP header {name!r} is empty or holds a line break")
        extra += f"{name}: {value}\r\n"
    request = (
        f"GET {target} HTTP/1.1\r\nHost: {host_header}\r\nUser-Agent: {user_agent}\r\n{extra}"
        "Accept: application/json\r\nConnection: close\r\n\r\n"
    ).encode("latin-1")
    try:
        async with asyncio.timeout(timeout_s):
            reader, writer = await asyncio.open_connection(parts.hostname, port, ssl=context)
            try:
                writer.write(request)
                await writer.drain()
                return await _read_response(reader)
            finally:
                writer.close()
    except TimeoutError:
        raise HttpError(f"no answer from {parts.hostname}:{port} within {timeout_s:g} s") from None
    except asyncio.IncompleteReadError:
        raise HttpError(f"{parts.hostname}:{port} closed the connection mid-response") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise HttpError(f"{parts.hostname}:{port} sent a malformed HTTP response ({exc})") from None
    except HttpError:
        raise
    except OSError as exc:
        raise HttpError(f"cannot reach {parts.hostname}:{port}: {exc.strerror or exc}") from None


async def _read_response(reader: asyncio.StreamReader) -> HttpResponse:
    status_line = (await reader.readline()).decode("latin-1").rstrip("\r\n")
    version, _, rest = status_line.partition(" ")
    if not version.startswith("HTTP/1."):
        raise ValueError(f"status line {status_line[:60]!r}")
    code, _, reason = rest.partition(" ")
    headers: dict[str, str] = {}
    for _ in range(MAX_HEADER_LINES):
        line = (await reader.readline()).decode("latin-1").rstrip("\r\n")
        if not line:
            break
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    else:
        raise ValueError("too many header lines")
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = await _read_chunked(reader)
    elif "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
    else:
        body = await reader.read()
    return HttpResponse(status=int(code), reason=reason, body=body, headers=headers)


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    chunks: list[bytes] = []
    while True:
        size_line = (await reader.readline()).decode("latin-1").strip()
        size = int(size_line.split(";", 1)[0], 16)
        if size == 0:
            while (await reader.readline()).strip():
                pass
            return b"".join(chunks)
        chunks.append(await reader.readexactly(size))
        await reader.readexactly(2)
