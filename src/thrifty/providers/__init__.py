"""Provider adapters: one small module per wire format behind one Protocol (``base.py``).

An OpenAI-compatible vendor is a data entry in ``vendors.py``, not a module. The HTTP call
itself is shared (``transport.py``): adapters are pure request/response mapping.
"""
