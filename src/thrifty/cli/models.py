"""`thrifty models`: prints the price catalog (shipped plus any --catalog files) as a table or
JSON. Only reads catalogs; rich is imported inside ``run`` so building the parser stays cheap.
"""

from __future__ import annotations

import argparse
import sys
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from thrifty.pricing.catalog import Catalog
    from thrifty.pricing.price import ModelInfo


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--provider", metavar="P", help="only this provider (e.g. openai)")
    parser.add_argument("--json", action="store_true", help="print the catalog as JSON")
    parser.add_argument(
        "--catalog",
        action="append",
        type=Path,
        default=[],
        metavar="FILE",
        help="merge a catalog file over the shipped one (repeatable; later files win)",
    )


def run(args: argparse.Namespace) -> int:
    import orjson

    from thrifty.pricing.catalog import Catalog, catalog_to_json, load_catalog

    catalog = load_catalog(args.catalog)
    if args.provider is not None:
        if args.provider not in catalog.providers():
            known = ", ".join(catalog.providers())
            print(f"thrifty: no provider '{args.provider}' in the catalog; known: {known}",
                  file=sys.stderr)
            return 1
        catalog = Catalog(catalog.as_of, [e for e in catalog.entries()
                                          if e.info.provider == args.provider])
    if args.json:
        payload = orjson.dumps(catalog_to_json(catalog), option=orjson.OPT_INDENT_2)
        sys.stdout.write(payload.decode() + "\n")
        return 0
    print_table(catalog)
    return 0


def print_table(catalog: Catalog) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"thrifty price catalog, as of {catalog.as_of} (USD per million tokens)")
    for name in ("provider", "model", "input", "output", "cached in", "cache write"):
        table.add_column(name, justify="right" if name not in ("provider", "model") else "left")
    for name in ("context", "max out"):
        table.add_column(name, justify="right")
    table.add_column("capabilities")
    for info in sorted(catalog, key=lambda i: (i.provider, i.price.input, i.model)):
        table.add_row(*_row(info))
    # piped output gets a wide fixed width so model ids are never cut
    Console(width=None if sys.stdout.isatty() else 200).print(table)


def _row(info: ModelInfo) -> list[str]:
    price = info.price
    return [
        info.provider,
        info.model,
        _usd(price.input),
        _usd(price.output),
        _usd(price.cached_input),
        _usd(price.cache_write),
        _tokens(info.context_window),
        _tokens(info.max_output),
        ", ".join(sorted(info.capabilities)),
    ]


def _usd(amount: Decimal) -> str:
    text = format(amount.normalize(), "f")
    whole, _, frac = text.partition(".")
    return f"${whole}.{frac.ljust(2, '0')}"


def _tokens(count: int) -> str:
    return f"{count:,}"
