"""`harness import`: other tools' captures turned into recordings, by the format's name.

Each importer keeps payload bytes exactly as the capture holds them and writes down, in its module
docstring, what it has to make up (connections, request URLs) because the capture did not hold it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from harness.errors import HarnessError
from recorder.import_cryptofeed_v1 import import_cryptofeed_v1
from recorder.import_hftbacktest import ImportSummary, import_hftbacktest

Importer = Callable[..., ImportSummary]

IMPORTERS: dict[str, Importer] = {
    "hftbacktest": import_hftbacktest,
    "cryptofeed-v1": import_cryptofeed_v1,
}


def run_import(
    *, capture_format: str, source: Path, output: Path, seconds: float | None, venue: str | None = None
) -> None:
    """The CLI shell: imports, then prints one summary line. `venue` None: the capture says (its URLs,
    its frames); a name overrides it."""
    try:
        importer = IMPORTERS[capture_format]
    except KeyError:
        known = ", ".join(sorted(IMPORTERS))
        raise HarnessError(f"unknown capture format {capture_format!r}; known formats: {known}") from None
    overrides = {} if venue is None else {"venue": venue}
    print(importer(source, output, seconds=seconds, **overrides).line())
