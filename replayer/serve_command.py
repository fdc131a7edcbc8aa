"""`harness serve`: replay a recording as a fake Binance spot venue on loopback until Ctrl-C."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from harness.errors import HarnessError
from harness.loopback import exposure_warning
from harness.venues.binance_spot.rest import REQUEST_WEIGHT_PER_MINUTE
from replayer.replay_data import ReplayData, load_replay_data
from replayer.server import VenueServer


def run_serve(
    recording: Path,
    speed: float = 1.0,
    host: str = "127.0.0.1",
    port: int = 0,
    rest_weight_limit: int = REQUEST_WEIGHT_PER_MINUTE,
) -> None:
    """Blocks until Ctrl-C; prints the WebSocket and REST base URLs as soon as the port listens."""
    if speed < 0:
        raise HarnessError(f"--speed must be >= 0, got {speed}")
    data = load_replay_data(recording)
    for note in data.notes:
        print(f"warning: {note}", file=sys.stderr, flush=True)
    try:
        asyncio.run(_serve(data, recording, speed, host, port, rest_weight_limit))
    except KeyboardInterrupt:
        print("stopped", flush=True)


async def _serve(data: ReplayData, recording: Path, speed: float, host: str, port: int, weight_limit: int) -> None:
    if (warning := exposure_warning(host)) is not None:
        print(f"warning: {warning}", file=sys.stderr, flush=True)
    server = VenueServer(data, speed=speed, host=host, port=port, rest_weight_limit=weight_limit)
    try:
        await server.start()
    except OSError as exc:
        raise HarnessError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    try:
        skipped = f", {data.skipped_frames} recorded before the REST snapshot skipped" if data.skipped_frames else ""
        print(f"serving {recording}: {len(data.frames)} frames on {', '.join(data.streams)}{skipped}", flush=True)
        print(f"websocket: {server.ws_url}  (e.g. {server.ws_url}/stream?streams={'/'.join(data.streams)})", flush=True)
        print(
            f"rest:      {server.rest_url}  (e.g. {server.rest_url}/api/v3/depth?symbol={data.symbols[0]})", flush=True
        )
        limit = f"{weight_limit} weight a minute per IP (429, then 418 bans)" if weight_limit else "off"
        print(f"rest weight limit: {limit}; --rest-weight-limit sets it, 0 turns it off", flush=True)
        print("the replay clock starts when the first client subscribes; Ctrl-C stops", flush=True)
        await server.finished.wait()
        print("replay finished; connections stay open, Ctrl-C stops", flush=True)
        await asyncio.Event().wait()
    finally:
        await server.stop()
