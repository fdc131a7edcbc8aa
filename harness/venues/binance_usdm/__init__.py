"""Binance USD-M futures: the spot dialect plus a `pu` link on every depth event."""
