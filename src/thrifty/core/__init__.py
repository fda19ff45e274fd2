"""Provider-neutral types shared by every layer. Nothing here does I/O."""
