"""``thrifty fake-provider``: serve one fake LLM wire (openai, anthropic or gemini) on a
loopback address until Ctrl-C or SIGTERM, for demos, manual testing and benchmarks run in a
separate process. The server itself lives in ``thrifty.fake``, imported only by ``run``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

_SDK_HINTS = {
    "openai": 'OpenAI(base_url="{url}/v1")',
    "anthropic": 'Anthropic(base_url="{url}")',
    "gemini": 'genai.Client(http_options=HttpOptions(base_url="{url}"))',
}


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--wire", required=True, choices=sorted(_SDK_HINTS),
                        help="the vendor wire format to speak")
    parser.add_argument("--port", type=int, default=0, help="port to bind (0: pick a free one)")
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to bind")
    parser.add_argument("--latency-ms", type=float, default=0.0,
                        help="delay before the first byte of every response")
    parser.add_argument("--tokens-per-s", type=float, default=None,
                        help="generation speed (unset: as fast as possible)")
    parser.add_argument("--error-rate", type=float, default=0.0,
                        help="probability of injecting a fault into a request, 0..1")
    parser.add_argument("--faults", default=None,
                        help="comma-separated kinds to inject: 429,500,503,529,timeout,reset,"
                             "malformed,cut (default: all)")
    parser.add_argument("--seed", type=int, default=0, help="seed of replies and faults")
    parser.add_argument("--api-key", default=None, help="require this key (default: any)")


def run(args: argparse.Namespace) -> int:
    import asyncio

    from thrifty.fake.faults import ALL_FAULTS, UnknownFault, check_kinds

    try:
        faults = check_kinds(args.faults.split(",")) if args.faults else ALL_FAULTS
    except UnknownFault as exc:
        print(f"thrifty fake-provider: {exc}", file=sys.stderr)
        return 2
    try:
        import uvloop

        runner = asyncio.Runner(loop_factory=uvloop.new_event_loop)
    except ImportError:
        runner = asyncio.Runner()
    with runner:
        try:
            return runner.run(_serve(args, faults))
        except KeyboardInterrupt:
            return 0


async def _serve(args: argparse.Namespace, faults: Sequence[str]) -> int:
    import asyncio
    import contextlib
    import signal

    from thrifty.fake import start_fake

    try:
        fake = await start_fake(
            args.wire,
            port=args.port,
            host=args.host,
            latency_ms=args.latency_ms,
            tokens_per_s=args.tokens_per_s,
            error_rate=args.error_rate,
            faults=faults,
            seed=args.seed,
            api_key=args.api_key,
        )
    except (ValueError, OSError) as exc:
        print(f"thrifty fake-provider: {exc}", file=sys.stderr)
        return 2
    stop = asyncio.Event()
    with contextlib.suppress(NotImplementedError):  # no signal handlers on Windows loops
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    hint = _SDK_HINTS[args.wire].format(url=fake.base_url)
    print(f"fake {args.wire} provider listening on {fake.base_url}  (client: {hint})", flush=True)
    try:
        await stop.wait()
    finally:
        await fake.close()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run without the full ``thrifty`` CLI: ``python -m thrifty.cli.fake_provider``."""
    parser = argparse.ArgumentParser(prog="thrifty fake-provider", description=__doc__)
    register(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
