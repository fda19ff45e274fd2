"""``thrifty check-config``: validate and resolve a config without starting anything."""

from __future__ import annotations

import argparse
import os


def register(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", nargs="?", default=os.environ.get("THRIFTY_CONFIG"),
                   help="config file (default: $THRIFTY_CONFIG, else the environment)")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from thrifty.config.load import load_settings
    from thrifty.config.resolve import resolve

    settings = load_settings(args.config)
    runtime = resolve(settings, base_dir=Path(args.config).parent if args.config else None)
    models = sum(1 for r in runtime.routes.routes() if r.kind == "model")
    aliases = len(runtime.routes) - models
    print(f"ok: {len(runtime.providers)} provider(s), {models} model name(s), "
          f"{aliases} alias(es); prices from catalog {runtime.catalog.as_of}")
    for note in runtime.notes:
        print(f"note: {note}")
    return 0
