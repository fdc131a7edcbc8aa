"""Loads the design document's sketches from ../shared/seed/sketches, the baselines benches compare with.

They are never copied into the project: a bench that finds no sketch says so and skips the comparison.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

SKETCHES = Path(__file__).resolve().parents[2] / "shared" / "seed" / "sketches"


def sketch_path(filename: str) -> Path:
    return SKETCHES / filename


def load_sketch(filename: str) -> ModuleType | None:
    """The sketch module `filename`, or None when the shared folder is not beside the checkout."""
    path = sketch_path(filename)
    if not path.is_file():
        return None
    spec = importlib.util.spec_from_file_location(f"sketch_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
