"""``thrifty spend`` and the spend formatters: --since parsing, JSON, table, missing file."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import orjson
import pytest

from thrifty.cli import main as cli_main
from thrifty.cli.spend import parse_since
from thrifty.ledger.entry import LedgerEntry
from thrifty.ledger.spend import spend_json, spend_table
from thrifty.ledger.sqlite import SQLiteLedger

MakeEntry = Callable[..., LedgerEntry]
NOW = 1_714_608_000.0  # 2024-05-02T00:00:00Z


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("7d", NOW - 7 * 86_400),
        ("24h", NOW - 86_400),
        ("30m", NOW - 1_800),
        ("90s", NOW - 90),
        ("2w", NOW - 14 * 86_400),
        ("1.5h", NOW - 5_400),
        ("2024-05-01", 1_714_521_600.0),
        ("2024-05-01T12:00", 1_714_564_800.0),
        ("2024-05-01T12:00:00+02:00", 1_714_557_600.0),
    ],
)
def test_parse_since(text: str, expected: float) -> None:
    assert parse_since(text, NOW) == expected


@pytest.mark.parametrize("text", ["", "7", "d7", "7y", "yesterday", "2024-13-01"])
def test_parse_since_rejects_garbage(text: str) -> None:
    with pytest.raises(ValueError, match="ISO date"):
        parse_since(text, NOW)


@pytest.fixture
def only_spend(monkeypatch: pytest.MonkeyPatch) -> None:
    """Build the parser with the spend subcommand alone, so this test does not depend on the
    other subcommand modules."""
    monkeypatch.setattr(cli_main, "COMMANDS", {"spend": cli_main.COMMANDS["spend"]})


@pytest.fixture
def db(tmp_path: Path, entry: MakeEntry) -> Path:
    path = tmp_path / "ledger.db"
    with SQLiteLedger(path) as store:
        store.write_batch(
            [
                entry(1, cost_nano_usd=1),
                entry(2, cost_nano_usd=2_000_000_000, provider="anthropic",
                      upstream_model="claude-haiku", latency_ms=300.0),
                entry(3, cost_nano_usd=7, status=500, latency_ms=500.0),
                entry(4, ts=NOW + 5, cost_nano_usd=10),
            ]
        )
    return path


@pytest.mark.usefixtures("only_spend")
def test_spend_json_through_main(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main.main(["spend", "--by", "provider", "--json", "--db", str(db)]) == 0
    doc = orjson.loads(capsys.readouterr().out)
    assert (doc["by"], doc["since"], doc["until"]) == ("provider", None, None)
    assert [(r["group"], r["requests"], r["cost_usd"]) for r in doc["rows"]] == [
        ("anthropic", 1, "2.000000000"),
        ("openai", 3, "0.000000018"),
    ]
    total = doc["total"]
    assert Decimal(total["cost_usd"]) == Decimal("2.000000018")
    assert (total["requests"], total["errors"], total["input_tokens"]) == (4, 1, 40)
    assert total["avg_latency_ms"] == 250.0


@pytest.mark.usefixtures("only_spend")
def test_spend_since_filters(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = cli_main.main(["spend", "--by", "day", "--since", "2024-05-02", "--json",
                          "--db", str(db)])
    assert code == 0
    doc = orjson.loads(capsys.readouterr().out)
    assert doc["since"] == "2024-05-02T00:00:00+00:00"
    assert [(r["group"], r["cost_usd"]) for r in doc["rows"]] == [("2024-05-02", "0.000000010")]


@pytest.mark.usefixtures("only_spend")
def test_spend_table_uses_env_path_and_ends_with_totals(
    db: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("THRIFTY_LEDGER_PATH", str(db))
    monkeypatch.setenv("COLUMNS", "200")
    assert cli_main.main(["spend"]) == 0
    out = capsys.readouterr().out
    assert "anthropic/claude-haiku" in out and "openai/gpt-4o-mini" in out
    last_row = [line for line in out.splitlines() if "│" in line][-1]
    assert "total" in last_row and "2.000000" in last_row


@pytest.mark.usefixtures("only_spend")
def test_missing_ledger_is_a_message_not_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nope.db"
    assert cli_main.main(["spend", "--db", str(missing)]) == 1
    err = capsys.readouterr().err
    assert f"no ledger at {missing}" in err and "Traceback" not in err
    assert not missing.exists()  # reading never creates the file


@pytest.mark.usefixtures("only_spend")
def test_unreadable_file_and_bad_since_are_messages(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not a database" * 100)
    assert cli_main.main(["spend", "--db", str(junk)]) == 1
    assert "cannot read the ledger" in capsys.readouterr().err
    assert cli_main.main(["spend", "--since", "lately", "--db", str(junk)]) == 2
    assert "lately" in capsys.readouterr().err


def test_spend_json_keeps_exact_cost_without_exponent(entry: MakeEntry) -> None:
    store = SQLiteLedger(":memory:")
    store.write_batch([entry(1, cost_nano_usd=123), entry(2, cost_nano_usd=1)])
    [row] = spend_json(store.spend("model", None))
    assert row["cost_usd"] == "0.000000124"
    assert isinstance(row["input_tokens"], int) and row["input_tokens"] == 20


def test_spend_table_has_a_totals_row(entry: MakeEntry) -> None:
    store = SQLiteLedger(":memory:")
    store.write_batch([entry(1), entry(2, provider="anthropic")])
    rows = store.spend("provider", None)
    table = spend_table(rows, "provider")
    assert table.row_count == len(rows) + 1
    assert list(table.columns[0].cells) == [*(r.group for r in rows), "total"]


def test_spend_table_shows_cache_columns_only_when_used(entry: MakeEntry) -> None:
    store = SQLiteLedger(":memory:")
    store.write_batch([entry(1)])
    plain = [c.header for c in spend_table(store.spend("model", None), "model").columns]
    assert "cached" not in plain and "reasoning" not in plain and "input" in plain
    store.write_batch([entry(2, cached_input_tokens=3)])
    cached = [c.header for c in spend_table(store.spend("model", None), "model").columns]
    assert "cached" in cached and "reasoning" not in cached
