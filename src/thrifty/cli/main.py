"""Entry point: builds the argument parser from the subcommand modules and dispatches.
Subcommand modules are imported lazily by name so ``thrifty models`` never pays for the
server's imports."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# subcommand -> (module under thrifty.cli, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "serve": ("serve", "run the OpenAI-compatible gateway"),
    "demo": ("demo", "run an offline demo against fake providers and print the spend"),
    "models": ("models", "print the price catalog"),
    "prices": ("prices", "manage price catalogs (import a LiteLLM price map)"),
    "spend": ("spend", "summarise the ledger"),
    "report": ("report", "spend, savings and health report (terminal, or --html FILE)"),
    "check-config": ("check_config", "validate a config file without starting"),
    "fake-provider": ("fake_provider", "serve a fake LLM provider on 127.0.0.1"),
    "route": ("route", "explain how a request would be routed"),
    "router": ("router", "train and inspect learned routers"),
    "bench": ("bench", "offline benchmarks (routing replay)"),
    "health": ("health", "show each deployment's health on a running gateway"),
    "keys": ("keys", "manage virtual keys (create, list, rotate, revoke)"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="thrifty", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        sp = sub.add_parser(name, help=help_text, description=help_text)
        importlib.import_module(f"thrifty.cli.{module}").register(sp)
        sp.set_defaults(_module=module)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    from thrifty.errors import ConfigError

    try:
        code: int = importlib.import_module(f"thrifty.cli.{args._module}").run(args)
    except ConfigError as exc:
        print(f"thrifty: configuration error: {exc.message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
