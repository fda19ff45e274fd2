"""Seeing where the money goes: Prometheus metrics (``metrics``, ``scrape``), OpenTelemetry
traces (``tracing``) and structured, redacted logs (``logs``, ``access``). Everything here
watches finished requests through the gateway's observer hook; nothing here decides
anything about a request. ``server.telemetry_routes`` wires it into the HTTP app."""
