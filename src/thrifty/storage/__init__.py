"""Pieces every SQLite-backed store shares (ledger, keys, limit counters)."""
