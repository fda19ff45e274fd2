"""``thrifty serve``: load and resolve the config once, say what was found, then serve."""

from __future__ import annotations

import argparse
import os
import sys


def register(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", "-c", default=os.environ.get("THRIFTY_CONFIG"),
                   help="YAML/JSON config file (default: $THRIFTY_CONFIG, else discover "
                        "providers from the standard environment variables)")
    p.add_argument("--host", default=None, help="interface to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=None, help="port (default 4000)")
    p.add_argument("--workers", type=int, default=None, help="worker processes (default 1)")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from thrifty.config.load import describe_discovery, load_settings
    from thrifty.config.resolve import resolve
    from thrifty.engine.gateway import Gateway, open_ledger
    from thrifty.errors import ConfigError
    from thrifty.server.auth import is_loopback
    from thrifty.server.run import serve
    from thrifty.telemetry import multiproc
    from thrifty.telemetry.logs import configure_logging

    overrides = {"server.host": args.host, "server.port": args.port,
                 "server.workers": args.workers}
    settings = load_settings(args.config, overrides=overrides)
    runtime = resolve(settings, base_dir=Path(args.config).parent if args.config else None)
    s = settings.server
    tel = settings.telemetry
    configure_logging(tel.logs, secrets=[
        s.master_key.get_secret_value() if s.master_key else None,
        *(p.api_key for p in runtime.providers.values())])
    if tel.tracing.enabled:
        from thrifty.telemetry.tracing import require_sdk

        require_sdk()  # fail here, not in every worker
    if not is_loopback(s.host) and s.master_key is None:
        raise ConfigError(
            f"server.host: listening on {s.host} exposes the gateway beyond this machine; "
            "set THRIFTY_MASTER_KEY (clients send it as 'Authorization: Bearer <key>') "
            "or listen on 127.0.0.1"
        )
    out = sys.stderr
    if args.config:
        print(f"thrifty: config {args.config}", file=out)
    else:
        found = describe_discovery(os.environ)
        print("thrifty: no config file; providers found in the environment: "
              + ("none" if not found else "; ".join(found)), file=out)
    for name, prov in runtime.providers.items():
        n = sum(1 for r in runtime.routes.routes()
                if r.kind == "model" and r.targets[0].provider == name)
        print(f"thrifty:   {name} ({prov.vendor.name}, {prov.base_url}): {n} model names",
              file=out)
    for note in runtime.notes:
        print(f"thrifty: note: {note}", file=out)
    auth = "master key required" if s.master_key else "no auth (loopback only)"
    print(f"thrifty: listening on http://{s.host}:{s.port}/v1 with {s.workers} worker(s), "
          f"{auth}, ledger {settings.ledger.backend}:{settings.ledger.path}", file=out)
    out.flush()
    # several workers share their metrics through files in one directory, made before forking
    cleanup = multiproc.prepare(s.workers) if tel.metrics.enabled else None
    try:
        return serve(s.host, s.port, s.workers,
                     lambda: Gateway(runtime, ledger=open_ledger(runtime)),
                     on_worker_exit=multiproc.mark_dead)
    finally:
        if cleanup is not None:
            cleanup()
