"""The subject boundary: what the harness runs against the fake venue, and how it reports back.

A subject is anything that connects to a venue, keeps order books and tells the harness what its
books look like. Ours (harness/default_subject.py) is the default; a user's own components take
its place through a factory named `module:function` (the `--subject` option). The harness runs the
subject in its own process (harness/subject_host.py), so its event loop, its GIL and its latency
are its own, and the server's clock is not disturbed by it.

Contract: `factory(config)` returns an object with `async run(report, stop)`. `run` connects to
`config.ws_url` / `config.rest_url`, calls `report(message)` with the observation types of
harness/observations.py as things happen, and when `stop` is set it reports one FinalBook per
symbol and returns. It may also have `stats() -> dict` (queue depth, drops), read after `run`.

`module` is looked up in the current directory first, as uvicorn and pytest do, so a user's
`my_client.py` works as `--subject my_client:create` without setting PYTHONPATH.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from harness.errors import HarnessError
from harness.observations import SubjectMessage

DEFAULT_SUBJECT = "harness.default_subject:create"

Report = Callable[[SubjectMessage], None]


@dataclass(frozen=True, slots=True)
class SubjectConfig:
    """Where the fake venue listens and what it serves.

    `symbols` are the books to report, named as the recording names them (`BTCUSDT`; `spot/BTCUSDT`
    and `linear/BTCUSDT` where one Bybit recording holds both markets). `streams` are the recording's
    book streams as recorded (`orderbook.200.BTCUSDT`, `spot/orderbook.200.BTCUSDT`), for a subject that
    subscribes to what is there rather than to a fixed channel; empty when nobody said.
    """

    venue: str
    symbols: tuple[str, ...]
    ws_url: str
    rest_url: str
    seed: int = 0
    streams: tuple[str, ...] = ()


class Subject(Protocol):
    async def run(self, report: Report, stop: asyncio.Event) -> None: ...


SubjectFactory = Callable[[SubjectConfig], Subject]


def check_factory_spec(spec: str) -> tuple[str, str]:
    """Checks `module:function` names an importable module without running it (the subject process will)."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise HarnessError(f"subject {spec!r} is not of the form module:factory")
    _import_from_cwd()
    try:
        found = importlib.util.find_spec(module_name)
    except (ImportError, ValueError):
        found = None
    if found is None:
        raise HarnessError(
            f"subject module {module_name!r} cannot be found (looked in {os.getcwd()} and on the Python path)"
        )
    return module_name, attr


def load_factory(spec: str) -> SubjectFactory:
    """Resolves `module:function`; every way it can fail is one line for the user."""
    module_name, attr = check_factory_spec(spec)
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise HarnessError(f"subject module {module_name!r} cannot be imported: {exc}") from None
    factory: Any = getattr(module, attr, None)
    if not callable(factory):
        raise HarnessError(f"subject module {module_name!r} has no callable {attr!r}")
    return factory


def _import_from_cwd() -> None:
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)
