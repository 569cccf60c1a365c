"""Ingest judges rows with SQL twins of the staging macros (data_quality/rules.py): a
value ingest accepts must be one staging can clean, and one it flags must be one staging drops.
Here each twin and its macro, as dbt compiles it, read the same values."""

import os
import subprocess

import duckdb
import pytest

from data_quality.rules import (
    blocklist_reason,
    cleaned_text,
    lit,
    normalized_email,
    normalized_phone,
    parsed_amount,
    parsed_flag,
    parsed_integer,
    parsed_timestamp,
)
from orchestration.dbt_project import DBT_EXECUTABLE
from orchestration.settings import DBT_PROJECT_DIR

VALUES = [
    # emails
    "a@x.com", " A.Lee@Example.COM ", "not-an-email", "a@b", "a b@x.com", "a@@x.com", "张@例子.中国",
    # phones
    "13800138000", "+86 138-0013-8000", "８６１３８００１３８０００", "１３８００１３８０００", "8613800138000", "12345",
    "23800138000", "861380013800", "+1 415 555 0100", "+44 20 7946 0958", "+８６ 138 0013 8000", "+138 0013 8000", "＋1 415 555 0100", "(+1) 415 555 0100", "\t+1 415 555 0100",
    "电话13800138000",
    # text
    "M０００１", "店铺０７", " D\x07１ ",
    # timestamps
    "2026-10-01T10:00:00Z", "2026-10-01T10:00:00.123Z", "2026/10/01 10:00", "2026-10-01", "1790000000",
    "1790000000123", "01/10/2026", "2026-13-01 00:00:00", "soon",
    "2026-10-01T10:00:00+08:00", "2026-10-01T10:00:00-0500", "2026-10-01T10:00:00.5+08:00", "2026-10-01 10:00:00+08",
    "2026-10-01T10:00:00+25:00", "2026-10-01T10:00:00.123456789Z", "2026-10-01T18:00:00.123456789+08:00",
    "2026-10-01 10:00:00.1234567", "2026-10-01T10:00:00.1234567890Z",
    "2026/01/05", "2026-10-01 09:05", "2026-10-01T10:00", "2026年10月1日", "2026年10月01日 10:00:00", "2026.10.01",
    # amounts
    "¥1,299.00", "￥1,299.00", "-5.5", "12.345", "1.2.3", "free", " 1 299 元", "rmb 12", "-$3.50", ".5",
    "1e3", "USD 12", "1.234,50", "(12.00)", "12 pcs", "1,29",
    # whole numbers
    "12", " -1 ", "+3", "１２", "2.5", "3 pcs", "99999999999",
    # yes/no
    "Y", " yes ", "TRUE", "f", "No", "0", "1", "opt-in", "是",
    # placeholders, not identities
    "UNKNOWN", "unknown ", "test@test.com", "noreply@shop.cn", "a@localhost", "+8600000000000",
    "", "   ",
]

# twin in rules.py -> the staging macro it stands in for, as called on the value `v`
TWINS = {
    "email": (normalized_email, "normalize_email('v')"),
    "phone": (normalized_phone, "normalize_phone('v')"),
    "cleaned": (cleaned_text, "clean_text('v')"),
    "timestamp": (parsed_timestamp, "parse_utc_timestamp('v')"),
    "amount": (parsed_amount, "parse_amount('v')"),
    "integer": (parsed_integer, "parse_integer('v')"),
    "flag": (parsed_flag, "parse_boolean('v')"),
    **{f"{id_type}_placeholder": (lambda e, t=id_type: blocklist_reason(t, e), f"blocklist_reason('{id_type}', 'v')")
       for id_type in ("member_id", "email", "phone")},
}
VALUES_SQL = "(values " + ", ".join(f"({lit(v)})" for v in VALUES) + ") as t(v)"


@pytest.fixture(scope="module")
def staging_sql(tmp_path_factory):
    """The macros applied to every value, compiled by dbt from the project itself."""
    target = tmp_path_factory.mktemp("dbt")
    columns = ", ".join(f"{{{{ {macro} }}}} as {name}" for name, (_, macro) in TWINS.items())
    done = subprocess.run(
        [DBT_EXECUTABLE, "--quiet", "compile", "--target-path", str(target / "target"),
         "--inline", f"select v, {columns} from {VALUES_SQL}"],
        cwd=DBT_PROJECT_DIR, env={**os.environ, "CDP_WAREHOUSE_PATH": str(target / "compile.duckdb")},
        capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


@pytest.mark.parametrize("name", TWINS)
def test_each_ingest_twin_gives_what_its_staging_macro_gives(staging_sql, name):
    twin = TWINS[name][0]
    with duckdb.connect() as con:
        staged = dict(con.execute(f"select v, {name} from ({staging_sql})").fetchall())
        ingested = dict(con.execute(f"select v, {twin('v')} from {VALUES_SQL}").fetchall())
    assert len(staged) == len(VALUES)
    differing = {v: (ingested[v], staged[v]) for v in VALUES if ingested[v] != staged[v]}
    assert not differing, differing
    # The cases reach both outcomes: values kept and values refused.
    assert {value is None for value in staged.values()} == {True, False}
