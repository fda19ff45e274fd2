"""``thrifty keys`` through ``thrifty.cli.main.main``: create prints the secret once, list
never does, rotate and revoke take effect, and bad input is a clear error."""

from __future__ import annotations

import asyncio
import socket
import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest

from thrifty.cli import main as cli_main
from thrifty.cli.keys import DB_ENV, parse_expiry
from thrifty.keys.model import VirtualKey
from thrifty.keys.postgres_keys import PostgresKeys
from thrifty.keys.sqlite_keys import SQLiteKeys

NOW = 1_714_608_000.0  # 2024-05-02T00:00:00Z
PG_DSN = "postgresql://postgres@127.0.0.1:5432/test"


@pytest.fixture(autouse=True)
def only_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """The parser with the keys subcommand alone, so these tests do not depend on the others
    (and work before the lead adds ``keys`` to COMMANDS)."""
    monkeypatch.setattr(cli_main, "COMMANDS", {"keys": ("keys", "manage virtual keys")})
    monkeypatch.delenv(DB_ENV, raising=False)


def lookup(db: Path, secret: str) -> VirtualKey | None:
    async def find() -> VirtualKey | None:
        store = SQLiteKeys(db)
        try:
            return await store.get_by_plaintext(secret)
        finally:
            await store.close()

    return asyncio.run(find())


def create(db: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> str:
    assert cli_main.main(["keys", "create", "--db", str(db), "--team", "search", *extra]) == 0
    return capsys.readouterr().out.strip()


def test_create_prints_only_the_secret_on_stdout(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "k.db"
    code = cli_main.main(["keys", "create", "--db", str(db), "--team", "search", "--name", "ci",
                          "--models", "cheap, gpt-4o-mini", "--tags", "prod", "--expires", "30d"])
    out, err = capsys.readouterr()
    secret = out.strip()
    assert code == 0 and out.count("\n") == 1 and secret.startswith("tk-")
    assert "only time the key is shown" in err and secret not in err
    key = lookup(db, secret)
    assert key is not None and key.team == "search" and key.name == "ci"
    assert key.allowed_models == ("cheap", "gpt-4o-mini") and key.tags == ("prod",)
    assert key.expires_at is not None
    assert abs(key.expires_at - key.created_at - 30 * 86_400) < 5
    assert key.id in err and key.display in err


def test_create_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = orjson.loads(create(tmp_path / "k.db", capsys, "--json"))
    assert doc["team"] == "search" and doc["status"] == "active" and doc["expires_at"] is None
    assert lookup(tmp_path / "k.db", doc["key"]) is not None
    assert "hash" not in doc


def test_list_never_shows_secrets(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "k.db"
    secrets = [create(db, capsys) for _ in range(2)]
    assert cli_main.main(["keys", "list", "--db", str(db)]) == 0
    table = capsys.readouterr().out
    assert cli_main.main(["keys", "list", "--db", str(db), "--json"]) == 0
    rows: list[dict[str, Any]] = orjson.loads(capsys.readouterr().out)
    assert len(rows) == 2
    for row, secret in zip(rows, secrets, strict=True):
        assert row["id"] in table and row["prefix"] in table
        assert secret not in table and secret[3:11] not in table
        assert "key" not in row


def test_rotate_and_revoke(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "k.db"
    old = create(db, capsys, "--models", "cheap")
    key = lookup(db, old)
    assert key is not None
    assert cli_main.main(["keys", "rotate", key.id, "--db", str(db)]) == 0
    new = capsys.readouterr().out.strip()
    assert new.startswith("tk-") and new != old
    assert lookup(db, old) is None
    rotated = lookup(db, new)
    assert rotated is not None and rotated.id == key.id and rotated.allowed_models == ("cheap",)
    assert cli_main.main(["keys", "revoke", key.id, "--db", str(db), "--json"]) == 0
    assert orjson.loads(capsys.readouterr().out)["status"] == "revoked"
    assert cli_main.main(["keys", "list", "--db", str(db), "--json"]) == 0
    assert orjson.loads(capsys.readouterr().out) == []
    assert cli_main.main(["keys", "list", "--db", str(db), "--json", "--all"]) == 0
    assert [r["id"] for r in orjson.loads(capsys.readouterr().out)] == [key.id]
    assert cli_main.main(["keys", "rotate", key.id, "--db", str(db)]) == 1
    assert "revoked" in capsys.readouterr().err


def test_unknown_id(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "k.db"
    create(db, capsys)
    assert cli_main.main(["keys", "revoke", "key_nope", "--db", str(db)]) == 1
    assert "No virtual key with id 'key_nope'" in capsys.readouterr().err


def test_reading_a_missing_database_does_not_create_it(tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]
                                                       ) -> None:
    db = tmp_path / "absent.db"
    assert cli_main.main(["keys", "list", "--db", str(db)]) == 1
    assert f"no keys database at {db}" in capsys.readouterr().err
    assert not db.exists()


def test_the_database_comes_from_the_environment(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "env.db"
    monkeypatch.setenv(DB_ENV, str(db))
    assert cli_main.main(["keys", "create", "--team", "t"]) == 0
    secret = capsys.readouterr().out.strip()
    assert lookup(db, secret) is not None


@pytest.mark.parametrize("bad", ["yesterday", "-5d", "2020-01-01"])
def test_bad_expiry_is_refused_before_anything_is_made(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], bad: str
) -> None:
    db = tmp_path / "k.db"
    args = ["keys", "create", "--db", str(db), "--team", "t", f"--expires={bad}"]
    assert cli_main.main(args) == 2
    assert "--expires" in capsys.readouterr().err
    assert not db.exists()


@pytest.mark.parametrize(
    ("text", "expected"),
    [("90s", NOW + 90), ("30m", NOW + 1_800), ("24h", NOW + 86_400), ("30d", NOW + 2_592_000),
     ("2w", NOW + 1_209_600), ("2024-06-01", 1_717_200_000.0),
     ("2024-06-01T02:00:00+02:00", 1_717_200_000.0)],
)
def test_parse_expiry(text: str, expected: float) -> None:
    assert parse_expiry(text, NOW) == expected


def test_parse_expiry_refuses_the_past() -> None:
    with pytest.raises(ValueError, match="not in the future"):
        parse_expiry("2024-05-01", NOW)


def _postgres_listening() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.mark.skipif(not _postgres_listening(),
                    reason="nothing listens on 127.0.0.1:5432 (PostgreSQL)")
def test_postgres_store(capsys: pytest.CaptureFixture[str]) -> None:
    schema = f"thrifty_keys_test_{uuid.uuid4().hex[:12]}"
    pg = ["--postgres", PG_DSN, "--schema", schema]
    try:
        assert cli_main.main(["keys", "create", "--team", "t", *pg]) == 0
        secret = capsys.readouterr().out.strip()
        assert cli_main.main(["keys", "list", "--json", *pg]) == 0
        rows = orjson.loads(capsys.readouterr().out)
        assert len(rows) == 1 and rows[0]["prefix"] == secret[:7] + "…"
    finally:
        import psycopg
        from psycopg import sql

        async def check_and_close() -> VirtualKey | None:
            store = PostgresKeys(PG_DSN, schema=schema)
            try:
                return await store.get_by_plaintext(secret)
            finally:
                await store.close()

        found = asyncio.run(check_and_close())
        with psycopg.connect(PG_DSN, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(
                sql.Identifier(schema)))
    assert found is not None and found.team == "t"
