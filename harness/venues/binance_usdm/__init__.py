"""Binance USD-M futures: the spot dialect plus a `pu` link on every depth event (`DIALECT`, venue.py)."""

from harness.venues.binance_usdm.venue import DIALECT

__all__ = ["DIALECT"]
