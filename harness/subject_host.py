"""Runs a subject in its own process and streams what it reports to stdout, one orjson line each.

`python -m harness.subject_host --factory module:function --venue ... --symbols A,B --ws-url ...
--rest-url ... --seed N [--streams S1,S2]`. The parent asks the subject to stop by closing our stdin; we then let the
subject report its final books, write one `{"stats": ...}` line and exit 0. A subject that raises
(in its factory or in `run`) exits 1 after one `{"crash": "<its traceback>"}` line, so the parent
shows the user's own traceback whole rather than digging it out of whatever else went to stderr.

Stdin is watched on the event loop (a read pipe), not by a thread blocked in a read: such a thread
holds stdin's buffer lock, and the interpreter aborts ("Fatal Python error: _enter_buffered_busy")
when it exits while the thread is still reading, as it does after a subject raised.

The report lines travel on a private copy of the stdout descriptor; the process's own stdout is
pointed at stderr before the subject is loaded, so a user's `print` (or a library's) lands among the
diagnostics instead of corrupting the report channel. Where the channel is a pipe on Linux it is made
REPORT_PIPE_BYTES deep: at Linux's default 64 KB (about 60 observation lines) the subject blocked in
its writes whenever the harness was busy for a moment, and the two processes ran in lockstep (1.5 s
of a 200,000-frame replay at speed 0 spent blocked; with 1 MB its wall time was 7 to 14% shorter in
two sets of runs taking turns with the default depth: docs/performance.md, "Where each goal stands").
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import traceback
from typing import BinaryIO

import orjson

from harness.busy_poll import busy_poll_loop_factory
from harness.collector import freeze_loaded
from harness.errors import HarnessError
from harness.observations import SubjectMessage, dumps
from harness.subject import SubjectConfig, load_factory

REPORT_PIPE_BYTES = 1 << 20
"""Linux's default ceiling for an unprivileged process (/proc/sys/fs/pipe-max-size)."""


def deepen_pipe(fd: int, size: int = REPORT_PIPE_BYTES) -> bool:
    """Makes the pipe behind `fd` `size` bytes deep; False where that cannot be done (not Linux, not a
    pipe, above the system's ceiling), which only leaves the default depth."""
    try:
        import fcntl

        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, size)
    except (ImportError, AttributeError, OSError):
        return False
    return True


class LineWriter:
    """Buffers report lines and flushes when the loop goes idle, so a burst costs one write, not many."""

    def __init__(self, out: BinaryIO, loop: asyncio.AbstractEventLoop) -> None:
        self._out = out
        self._loop = loop
        self._pending: list[bytes] = []
        self._scheduled = False

    def __call__(self, message: SubjectMessage) -> None:
        self._pending.append(dumps(message))
        if not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self.flush)

    def write_raw(self, line: bytes) -> None:
        self._pending.append(line)
        self.flush()

    def flush(self) -> None:
        self._scheduled = False
        if self._pending:
            self._out.write(b"\n".join(self._pending) + b"\n")
            self._out.flush()
            self._pending.clear()


async def _watch_stdin(stop: asyncio.Event) -> None:
    """Sets `stop` when the parent closes our stdin (end of file, or any read error)."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    try:
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        while await reader.read(4096):
            pass
    finally:
        stop.set()


async def _main(args: argparse.Namespace, channel: BinaryIO) -> int:
    config = SubjectConfig(
        venue=args.venue,
        symbols=tuple(s for s in args.symbols.split(",") if s),
        ws_url=args.ws_url,
        rest_url=args.rest_url,
        seed=args.seed,
        streams=tuple(s for s in args.streams.split(",") if s),
    )
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    watcher = asyncio.create_task(_watch_stdin(stop), name="stdin-watch")
    writer = LineWriter(channel, loop)
    try:
        subject = load_factory(args.factory)(config)
        freeze_loaded()
        await subject.run(writer, stop)
    except HarnessError:
        raise
    except Exception:
        text = traceback.format_exc()
        writer.flush()
        writer.write_raw(orjson.dumps({"crash": text}))
        print(text, file=sys.stderr, end="")
        return 1
    finally:
        watcher.cancel()
    writer.flush()
    stats_of = getattr(subject, "stats", None)
    stats = stats_of() if callable(stats_of) else {}
    writer.write_raw(orjson.dumps({"stats": stats}, default=str))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="harness.subject_host")
    parser.add_argument("--factory", required=True)
    parser.add_argument("--venue", required=True)
    parser.add_argument("--symbols", required=True)
    parser.add_argument("--ws-url", required=True)
    parser.add_argument("--rest-url", required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--streams", default="")
    parser.add_argument("--busy-poll-us", type=int, default=0)
    args = parser.parse_args(argv)
    sys.stdout.flush()
    channel = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    deepen_pipe(channel.fileno())
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    try:
        with asyncio.Runner(loop_factory=busy_poll_loop_factory(args.busy_poll_us)) as runner:
            return runner.run(_main(args, channel))
    except HarnessError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
