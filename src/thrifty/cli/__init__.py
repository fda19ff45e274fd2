"""The ``thrifty`` command: one module per subcommand, each with ``register`` and ``run``."""
