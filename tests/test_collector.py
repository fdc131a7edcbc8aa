"""harness/collector.py: what is alive when serving starts is left out of collections; later garbage is not."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from harness.collector import freeze_loaded


class _Node:
    def __init__(self) -> None:
        self.me = self  # a cycle: only the collector frees it


@pytest.fixture
def thawed() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()  # the test process is not the harness's to keep frozen


def test_loaded_objects_are_frozen_and_garbage_made_later_is_still_collected(thawed: None) -> None:
    loaded = [_Node() for _ in range(1_000)]
    dropped_before = _Node()
    gone_before = weakref.ref(dropped_before)
    del dropped_before

    freeze_loaded()

    assert gone_before() is None  # garbage of the moment is collected, not frozen
    assert gc.get_freeze_count() >= len(loaded)
    made_later = _Node()
    gone_later = weakref.ref(made_later)
    del made_later
    gc.collect()
    assert gone_later() is None
