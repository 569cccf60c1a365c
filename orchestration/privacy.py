"""Pseudonymisation key: HMAC-SHA256 keys for anything that leaves the private warehouse.

A plain or salted SHA-256 of an email can be reversed by trying every known address; a keyed
hash cannot without the key. The key comes from CDP_HMAC_KEY; the embedded default creates a
local key file on first use and says so. dbt computes the HMAC in SQL from the key's inner and
outer pads, read from the private table private.hmac_key, so the key never appears in SQL
text, dbt vars or logs."""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
from collections.abc import Callable
from pathlib import Path

import duckdb

from orchestration.warehouse import table_exists

KEY_ENV = "CDP_HMAC_KEY"
BLOCK_SIZE = 64  # SHA-256 block size in bytes
MIN_KEY_BYTES = 32  # SHA-256 output size

log = logging.getLogger(__name__)


def load_or_create_key(data_dir: Path, warn: Callable[[str], None] = log.warning) -> bytes:
    """The key from the environment, else the local key file (created on first use). `warn` says
    what the user should know (the key asset passes its step log, so the UI shows it too)."""
    configured = os.environ.get(KEY_ENV)
    if configured:
        key = configured.encode("utf-8")
        if len(key) < MIN_KEY_BYTES:
            # RFC 2104: keys shorter than the hash output weaken the HMAC; a short one can be guessed.
            warn(f"{KEY_ENV} is {len(key)} bytes long; use at least {MIN_KEY_BYTES} random bytes "
                 "(e.g. `python -c 'import secrets; print(secrets.token_hex(32))'`)")
        return key
    path = data_dir / "secrets" / "hmac.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
        warn(f"created a local pseudonymisation key at {path}; set {KEY_ENV} to use your own")
    return path.read_text().strip().encode("utf-8")


def hmac_pads(key: bytes) -> tuple[bytes, bytes]:
    """The HMAC inner and outer pads (RFC 2104) of `key`."""
    if len(key) > BLOCK_SIZE:
        key = hashlib.sha256(key).digest()
    key = key.ljust(BLOCK_SIZE, b"\0")
    return bytes(b ^ 0x36 for b in key), bytes(b ^ 0x5C for b in key)


def ensure_retired_keys(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("CREATE SCHEMA IF NOT EXISTS private")
    con.execute("CREATE TABLE IF NOT EXISTS private.hmac_key_retired (ipad BLOB, opad BLOB, retired_at TIMESTAMP)")


def install_key(con: duckdb.DuckDBPyConnection, key: bytes) -> bool:
    """Write the pads where the dbt models read them (a private schema, never published).

    Returns True when they replace a different key. Erased identifiers are remembered only as
    hashes under the key of their day (orchestration/erasure.py), so a replaced key's pads move
    to private.hmac_key_retired while any are stored: deliveries are still matched against them."""
    inner, outer = hmac_pads(key)
    ensure_retired_keys(con)
    con.execute("CREATE TABLE IF NOT EXISTS private.hmac_key (ipad BLOB, opad BLOB)")
    previous = con.execute("SELECT ipad, opad FROM private.hmac_key").fetchall()
    changed = bool(previous) and previous != [(inner, outer)]
    if changed and table_exists(con, "private", "erased_keys") and con.execute(
            "SELECT count(*) FROM private.erased_keys").fetchone()[0]:
        con.execute("""INSERT INTO private.hmac_key_retired SELECT ipad, opad, now()::timestamp FROM private.hmac_key
            WHERE (ipad, opad) NOT IN (SELECT (ipad, opad) FROM private.hmac_key_retired)""")
    con.execute("DELETE FROM private.hmac_key")
    con.execute("INSERT INTO private.hmac_key VALUES (?, ?)", [inner, outer])
    return changed
