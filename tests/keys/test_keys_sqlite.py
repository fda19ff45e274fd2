"""SQLiteKeys on disk: secrets never reach the file, the keys schema lives beside the ledger's
in one file, and several processes share it."""

from __future__ import annotations

import asyncio
import multiprocessing
import sqlite3
from pathlib import Path

import pytest

from thrifty.errors import ConfigError
from thrifty.keys.sqlite_keys import KEY_MIGRATIONS, VERSIONS_TABLE, SQLiteKeys
from thrifty.ledger.sqlite import SQLiteLedger


def file_bytes(db: Path) -> bytes:
    """The database and its WAL/shared-memory side files, as they are on disk."""
    return b"".join(p.read_bytes() for p in db.parent.glob(db.name + "*"))


async def test_plaintext_never_reaches_the_file(tmp_path: Path) -> None:
    db = tmp_path / "keys.db"
    store = SQLiteKeys(db)
    secrets: list[str] = []
    hashes: list[str] = []
    for i in range(5):
        key, secret = await store.create("t", name=f"k{i}")
        rotated, new = await store.rotate(key.id)
        secrets += [secret, new]
        hashes.append(rotated.hash)
    raw_open = file_bytes(db)  # WAL not yet checkpointed: rows sit in the -wal file
    await store.close()
    raw_closed = file_bytes(db)
    for raw in (raw_open, raw_closed):
        assert all(h.encode() in raw for h in hashes)  # we are reading the right bytes
        for secret in secrets:
            assert secret.encode() not in raw
            assert secret[3:].encode() not in raw  # nor the random part alone
            assert secret[3:20].encode() not in raw


async def test_keys_and_ledger_share_one_file(tmp_path: Path) -> None:
    db = tmp_path / "thrifty.db"
    ledger = SQLiteLedger(db)
    keys = SQLiteKeys(db)
    key, secret = await keys.create("t")
    assert keys.schema_version == KEY_MIGRATIONS[-1].version
    ledger.close()
    await keys.close()
    # Reopening both in the other order finds both schemas as they were.
    keys = SQLiteKeys(db)
    ledger = SQLiteLedger(db)
    assert await keys.get_by_plaintext(secret) == key
    assert ledger.count() == 0
    ledger.close()
    await keys.close()
    con = sqlite3.connect(db)
    try:
        versions = con.execute(f"SELECT version FROM {VERSIONS_TABLE}").fetchall()
    finally:
        con.close()
    assert versions == [(m.version,) for m in KEY_MIGRATIONS]


async def test_a_newer_keys_schema_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "keys.db"
    await SQLiteKeys(db).close()
    con = sqlite3.connect(db)
    con.execute(f"INSERT INTO {VERSIONS_TABLE} VALUES (99, 'from the future', 0)")
    con.commit()
    con.close()
    with pytest.raises(ConfigError, match="version 99"):
        SQLiteKeys(db)


async def test_a_change_in_one_connection_is_seen_by_another(tmp_path: Path) -> None:
    db = tmp_path / "keys.db"
    a, b = SQLiteKeys(db), SQLiteKeys(db)
    key, old = await a.create("t")
    assert await b.get_by_plaintext(old) == key
    _, new = await b.rotate(key.id)
    assert await a.get_by_plaintext(old) is None
    assert await a.get_by_plaintext(new) is not None
    await a.revoke(key.id)
    assert (await b.get(key.id)).revoked_at is not None
    await a.close()
    await b.close()


def _create_keys(path: str, n: int) -> None:
    async def main() -> None:
        store = SQLiteKeys(path)
        for _ in range(n):
            await store.create("proc")
        await store.close()

    asyncio.run(main())


def test_processes_opening_a_fresh_file_together(tmp_path: Path) -> None:
    db = str(tmp_path / "shared.db")
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_create_keys, args=(db, 5)) for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=60)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    con = sqlite3.connect(db)
    try:
        assert con.execute("SELECT COUNT(*) FROM virtual_keys").fetchone() == (20,)
        applied = con.execute(f"SELECT COUNT(*) FROM {VERSIONS_TABLE}").fetchone()
        assert applied == (len(KEY_MIGRATIONS),)
    finally:
        con.close()
