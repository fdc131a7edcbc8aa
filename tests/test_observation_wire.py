"""The observation wire line: the decode's shortcut for the common line judges every row as the general
field-by-field decode does (same message, or the same refusal)."""

from __future__ import annotations

import copy
import random
from typing import Any

import orjson
import pytest

from harness.errors import HarnessError
from harness.observations import BookObservation, dumps, loads

ODD_VALUES: list[Any] = ["x", "", 7, -1, 2.5, True, False, None, [], {}, ["1"], {"p": "1", "q": "2"}, "ab"]


def _row(rng: random.Random) -> list[Any]:
    levels = [[f"{100 + i}.5", f"{rng.random():.4f}"] + (["0", "3"] if rng.random() < 0.2 else []) for i in range(3)]
    return ["BTCUSDT", rng.randint(0, 10**12), rng.random() < 0.8, levels, list(reversed(levels)), 1, 2, 3, 4]


def _general(row: Any) -> BookObservation | str:
    try:
        return BookObservation.from_wire(row)
    except HarnessError as exc:
        return str(exc)
    except (TypeError, IndexError, KeyError):
        return "levels"


def _decoded(row: Any) -> BookObservation | str:
    try:
        message = loads(orjson.dumps(["o", row]))
    except HarnessError as exc:
        return "levels" if "not [price, size] pairs" in str(exc) else str(exc)
    assert isinstance(message, BookObservation)
    return message


def test_the_shortcut_decodes_every_row_as_the_general_decode_does() -> None:
    rng = random.Random(12)
    for _ in range(3_000):
        row: Any = _row(rng)
        for _ in range(rng.choice((0, 0, 1, 2))):
            if rng.random() < 0.1:
                row = row[: rng.randrange(len(row))] if rng.random() < 0.5 else [*row, 0]
            elif rng.random() < 0.3 and len(row) > 4:
                side = row[rng.choice((3, 4))]
                if type(side) is list and side:
                    side[rng.randrange(len(side))] = copy.deepcopy(rng.choice(ODD_VALUES))
            elif row:
                row[rng.randrange(len(row))] = copy.deepcopy(rng.choice(ODD_VALUES))
        assert _decoded(row) == _general(row), row


def test_an_observation_round_trips_with_its_levels_as_pairs() -> None:
    message = BookObservation("ETHUSDT", 5, True, [("1.5", "2"), ("1.4", "3")], [("1.6", "1")], 10, 11, 12, 13)
    assert loads(dumps(message)) == message
    wide = orjson.dumps(["o", ["ETHUSDT", 5, 1, [["1.5", "2", "0", "4"]], [], 10, 11, 12, 13]])
    decoded = loads(wide)
    assert isinstance(decoded, BookObservation)
    assert decoded.bids == [("1.5", "2")] and decoded.synced is True
    with pytest.raises(HarnessError, match="field 5"):
        loads(orjson.dumps(["o", ["ETHUSDT", 5, True, [], [], 10.5, 11, 12, 13]]))
