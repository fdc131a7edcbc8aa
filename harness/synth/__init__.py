"""The seeded market simulator (`market`) and the recording it writes as Binance would have sent it (`run`)."""
