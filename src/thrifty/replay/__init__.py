"""Offline replay: run logged or recorded traffic through the live policy code with a
provider that answers from the record, and price the result (``thrifty bench routing``)."""
