"""How ``thrifty report`` shows a ``Report``: rich tables for the terminal, and the
dashboard's templates rendered standalone (CSS inlined, charts as inline SVG) for the HTML
file. Pure formatting: no queries."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from thrifty.ui.format import ms, nano, num, pct, when

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from thrifty.cli.report import Report
    from thrifty.insights.views import GroupTotal


def print_report(report: Report, console: Console | None = None) -> None:
    from rich.console import Console

    if console is None:
        console = Console()
        if not console.is_terminal:  # piped or redirected: widen rather than cut cells
            console = Console(width=max(console.width, 150))
    s = report.spend
    t = s.totals
    console.print(f"[bold]Where the money goes[/bold], {report.label} "
                  f"(generated {when(report.generated)})")
    console.print(_kpis(report))
    console.print(_groups("Spend by model", "model", s.top))
    console.print(_groups("Top teams", "team", report.teams))
    console.print(_groups("Top keys", "key", report.keys))
    console.print(_costliest(report))
    if s.savings is not None:
        console.print(_savings(report))
    console.print(_health(report))
    if s.budgets:
        console.print(_budgets(report))
    if not t.requests:
        console.print("[yellow]No requests in this window.[/yellow]")


def _table(title: str, *columns: str) -> Table:
    from rich.table import Table

    table = Table(title=title, title_justify="left", title_style="bold")
    for i, c in enumerate(columns):
        table.add_column(c, justify="left" if i == 0 else "right", no_wrap=True)
    return table


def _kpis(report: Report) -> Table:
    t = report.spend.totals
    saved = report.spend.savings
    table = _table("Summary", "measure", "value")
    table.add_row("spend", nano(t.cost_nano))
    table.add_row("requests", num(t.requests))
    table.add_row("average per request", nano(t.avg_cost_nano))
    table.add_row("error rate", pct(t.error_rate))
    table.add_row("needed more than one call", pct(t.multi / t.requests if t.requests else 0))
    table.add_row("escalation rate (cascades)",
                  pct(t.cascade_multi / t.cascade) if t.cascade else "–")
    if saved is not None:
        table.add_row(f"saved vs {saved.baseline}",
                      f"{nano(saved.total.saved_nano)} ({pct(saved.saved_share)})")
    return table


def _groups(title: str, heading: str, rows: Sequence[GroupTotal]) -> Table:
    table = _table(title, heading, "spend", "share", "requests", "errors")
    for g in rows:
        table.add_row(g.group, nano(g.cost_nano), pct(g.share), num(g.requests), num(g.errors))
    return table


def _costliest(report: Report) -> Table:
    table = _table("Where the budget leaks: the costliest requests", "request", "when",
                   "model", "team", "key", "calls", "cost")
    for r in report.spend.costliest[:10]:
        table.add_row(r.request_id, when(r.ts), r.model, r.team or "–", r.key_id or "–",
                      str(r.calls), nano(r.cost_nano))
    return table


def _savings(report: Report) -> Table:
    s = report.spend.savings
    assert s is not None
    table = _table(f"Savings vs always {s.baseline}", "where", "requests", "on baseline",
                   "actual", "saved")
    for line in (s.routing, s.by_baseline, s.total):
        table.add_row(line.label, num(line.requests), nano(line.baseline_nano),
                      nano(line.actual_nano), nano(line.saved_nano))
    table.caption = f"caching and batch tier: {s.caching}"
    return table


def _health(report: Report) -> Table:
    table = _table("Health per deployment", "deployment", "requests", "errors", "fallback",
                   "via escalation", "p50", "p95", "p99", "TTFT p50", "TTFT p95")
    for d in report.health.deployments:
        lat = d.latency.values if d.latency else None
        ttft = d.ttft.values if d.ttft else None
        table.add_row(d.stats.key, num(d.stats.requests), pct(d.error_rate),
                      pct(d.fallback_rate), pct(d.escalated_share),
                      *(ms(v) for v in (lat or (None, None, None))),
                      *(ms(v) for v in (ttft[:2] if ttft else (None, None))))
    return table


def _budgets(report: Report) -> Table:
    table = _table("Budgets (current windows, from the ledger)", "scope", "window", "used",
                   "spent", "limit")
    for b in report.spend.budgets:
        fmt = nano if b.resource == "usd" else num
        table.add_row(b.scope, f"{b.resource} per {b.window}", pct(b.share), fmt(b.used),
                      fmt(b.limit))
    return table


def html_report(report: Report) -> str:
    """One self-contained page: no link, script or font from anywhere else."""
    from thrifty.ui.render import health_context, render, spend_context, static_text

    return render("report.html", standalone=True, css=static_text("thrifty.css"),
                  label=report.label, generated=report.generated, teams=report.teams,
                  keys=report.keys, **spend_context(report.spend, report.generated),
                  **health_context(report.health))
