"""`thrifty prices`: manage user price catalogs. ``import`` converts a LiteLLM price map and
merges it into a catalog file (entries in the file are updated, others kept); ``show`` prints
the entries matching a model. Heavy imports stay inside the handlers.
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from thrifty.pricing.catalog import Catalog
    from thrifty.pricing.price import ModelInfo

DEFAULT_INTO = Path("thrifty-prices.json")


def register(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="prices_command", metavar="ACTION", required=True)
    imp = sub.add_parser(
        "import",
        help="convert a LiteLLM price map and merge it into a catalog file",
        description="Convert a LiteLLM model_prices_and_context_window.json into thrifty's "
        "catalog format and merge it into --into (created if missing).",
    )
    imp.add_argument("file", type=Path, metavar="FILE", help="LiteLLM-format JSON file")
    imp.add_argument(
        "--into",
        type=Path,
        default=DEFAULT_INTO,
        metavar="PATH",
        help=f"catalog file to create or update (default: ./{DEFAULT_INTO})",
    )
    show = sub.add_parser("show", help="print the catalog entries for a model id or alias")
    show.add_argument("model", metavar="MODEL", help="model id or alias, or provider/model")
    show.add_argument(
        "--catalog", action="append", type=Path, default=[], metavar="FILE",
        help="merge a catalog file over the shipped one (repeatable)",
    )


def run(args: argparse.Namespace) -> int:
    if args.prices_command == "import":
        return run_import(args.file, args.into)
    return run_show(args.model, args.catalog)


def run_import(source: Path, into: Path) -> int:
    import orjson

    from thrifty.errors import ConfigError
    from thrifty.pricing.catalog import Catalog, catalog_to_json, read_catalog_file
    from thrifty.pricing.litellm_import import import_litellm

    try:
        data = orjson.loads(source.read_bytes())
    except OSError as exc:
        raise ConfigError(
            f"{source}: cannot read ({exc.strerror or exc}); check the path"
        ) from None
    except orjson.JSONDecodeError as exc:
        raise ConfigError(
            f"{source}: not valid JSON at line {exc.lineno}, column {exc.colno} ({exc.msg}); "
            "pass LiteLLM's model_prices_and_context_window.json"
        ) from None
    entries, warnings = import_litellm(data, source=f"LiteLLM price map {source.name}")
    existing = read_catalog_file(into) if into.exists() else Catalog(date.today().isoformat())
    added, updated, unchanged = _diff(existing, entries)
    merged = existing.with_entries(entries)
    merged = Catalog(date.today().isoformat(), merged.entries())
    _write_atomically(into, orjson.dumps(catalog_to_json(merged), option=orjson.OPT_INDENT_2))
    skipped = len(data) - len(entries) if isinstance(data, dict) else 0
    for warning in warnings[:20]:
        print(f"  warning: {warning}", file=sys.stderr)
    if len(warnings) > 20:
        print(f"  ... and {len(warnings) - 20} more warnings", file=sys.stderr)
    print(
        f"imported {len(entries)} chat models from {source} into {into}: "
        f"{added} added, {updated} updated, {unchanged} unchanged, {skipped} skipped"
    )
    print(
        "use it by adding to your config:\n"
        f"  pricing:\n    catalogs: [{into}]\n"
        f"or try it now: thrifty models --catalog {into}"
    )
    return 0


def _diff(existing: Catalog, entries: list[ModelInfo]) -> tuple[int, int, int]:
    added = updated = unchanged = 0
    # keyed by exact provider/model, not alias: with_entries overrides by id
    current = {m.key: m for m in existing}
    for info in entries:
        before = current.get(info.key)
        if before is None:
            added += 1
        elif before != info:
            updated += 1
        else:
            unchanged += 1
    return added, updated, unchanged


def _write_atomically(path: Path, payload: bytes) -> None:
    """A crash mid-write must not leave a half catalog that then fails gateway start."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(payload + b"\n")
    os.replace(tmp, path)


def run_show(model: str, catalogs: list[Path]) -> int:
    from thrifty.pricing.catalog import load_catalog

    catalog = load_catalog(catalogs)
    matches = catalog.find(model)
    if not matches and "/" in model:
        provider, _, name = model.partition("/")
        hit = catalog.get(provider, name)
        matches = [hit] if hit is not None else []
    if not matches:
        print(f"thrifty: no catalog entry for '{model}'; list them with `thrifty models`",
              file=sys.stderr)
        return 1
    for info in matches:
        _print_entry(info, catalog.aliases(info.provider, info.model))
    return 0


def _print_entry(info: ModelInfo, aliases: tuple[str, ...]) -> None:
    from thrifty.pricing.catalog import decimal_text

    price = info.price
    lines = [
        f"{info.key}",
        f"  aliases:        {', '.join(aliases) or '-'}",
        f"  input:          {decimal_text(price.input)} USD / M tokens",
        f"  output:         {decimal_text(price.output)} USD / M tokens",
        f"  cached input:   {decimal_text(price.cached_input)} USD / M tokens",
        f"  cache write:    {decimal_text(price.cache_write)} USD / M tokens",
        f"  context window: {info.context_window:,} tokens, max output {info.max_output:,}",
        f"  capabilities:   {', '.join(sorted(info.capabilities)) or '-'}",
        f"  source:         {info.source}",
    ]
    print("\n".join(lines))
