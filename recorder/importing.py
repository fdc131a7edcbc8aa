"""`harness import`: other tools' captures turned into recordings, by the format's name.

Each importer keeps payload bytes exactly as the capture holds them and writes down, in its module
docstring, what it has to make up (connections, request URLs) because the capture did not hold it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from harness.errors import HarnessError
from recorder.import_cryptofeed_v1 import import_cryptofeed_v1
from recorder.import_cryptofeed_v3 import import_cryptofeed_v3
from recorder.import_hftbacktest import import_hftbacktest


class Summary(Protocol):
    def line(self) -> str: ...


Importer = Callable[..., Summary]

IMPORTERS: dict[str, Importer] = {
    "hftbacktest": import_hftbacktest,
    "cryptofeed-v1": import_cryptofeed_v1,
    "cryptofeed-v3": import_cryptofeed_v3,
}
TAKES_VENUE = frozenset({"hftbacktest", "cryptofeed-v1", "cryptofeed-v3"})
"""Formats whose captures can hold several venues (hftbacktest: Binance spot or USD-M; cryptofeed: any)."""


def run_import(
    *, capture_format: str, source: Path, output: Path, seconds: float | None, venue: str | None = None
) -> None:
    """The CLI shell: imports, then prints one summary line."""
    try:
        importer = IMPORTERS[capture_format]
    except KeyError:
        known = ", ".join(sorted(IMPORTERS))
        raise HarnessError(f"unknown capture format {capture_format!r}; known formats: {known}") from None
    if venue is None:
        print(importer(source, output, seconds=seconds).line())
    elif capture_format in TAKES_VENUE:
        print(importer(source, output, seconds=seconds, venue=venue).line())
    else:
        raise HarnessError(f"--venue does not apply to {capture_format} captures: they hold one venue")
