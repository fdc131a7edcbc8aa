"""Bybit v5 public market data, spot and linear: its dialect (`DIALECT`, venue.py) and the modules behind it.

`orderbook.{depth}.{symbol}` with the snapshot in the stream; this package's `__init__` imports only
the venue side, so importing `oracle_rule` never loads the subject's decoder or sync rule.
"""

from harness.venues.bybit.venue import DIALECT

__all__ = ["DIALECT"]
