"""``thrifty report``: the numbers in the terminal, and an HTML file that stands alone."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from thrifty.cli.main import main
from thrifty.ledger.sqlite import SQLiteLedger

from .conftest import seeded_rows


@pytest.fixture
def ledger(tmp_path: Path) -> Path:
    path = tmp_path / "thrifty.db"
    with SQLiteLedger(str(path)) as store:
        store.write_batch(seeded_rows(time.time()))
    return path


def test_terminal_and_html(ledger: Path, tmp_path: Path,
                           capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "report.html"
    assert main(["report", "--db", str(ledger), "--since", "7d", "--html", str(out)]) == 0
    text = capsys.readouterr().out
    # 120 rows, 12 failed (every tenth); sonnet rows cost 5 M nano x (1 + team index)
    assert "Where the money goes" in text and "108" in text and "10.0%" in text
    for heading in ("Top teams", "Top keys", "costliest requests", "Savings vs always",
                    "Health per deployment"):
        assert heading in text
    assert re.search(r"support\s+│\s+\$", text)
    html = out.read_text()
    assert html.count('<svg class="chart"') == 3  # spend, latency, time to first token
    assert "<style>" in html and "svg.chart" in html
    assert not re.search(r"<(link|script|img)\b", html)
    assert not re.search(r"(src|href)=\"(https?:)?//", html)
    assert "research" in html and "anthropic/claude-sonnet-4-6" in html


def test_errors_are_plain(ledger: Path, tmp_path: Path,
                          capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "--db", str(tmp_path / "none.db")]) == 1
    assert "no ledger at" in capsys.readouterr().err
    assert main(["report", "--db", str(ledger), "--baseline", "nope/nothing"]) == 2
    assert "no price for baseline" in capsys.readouterr().err
    assert main(["report", "--db", str(ledger), "--since", "yesterday-ish"]) == 2


def test_hours_read_the_rows(ledger: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "--db", str(ledger), "--since", "24h"]) == 0
    text = capsys.readouterr().out
    assert "since 24h" in text and "Spend by model" in text
