"""Configuration: a strict schema (``schema.py``), loading from file + environment
(``load.py``), and resolution into runtime objects (``resolve.py``)."""
