"""Bybit v5 public market data, spot and linear: `orderbook.{depth}.{symbol}` with its snapshot in the stream."""
