"""The ledger: one row per request, written off the request path by a batched writer."""
