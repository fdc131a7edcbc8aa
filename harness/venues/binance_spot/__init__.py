"""Binance spot: its dialect (`DIALECT`, venue.py) and the modules behind it."""

from harness.venues.binance_spot.venue import DIALECT

__all__ = ["DIALECT"]
