"""The rules fingerprint decides when a build must be a full refresh: it must change with what
incremental rows are computed from, and only with that."""

import duckdb
import pytest
import yaml

from orchestration.dbt_project import (
    dbt_build_args,
    full_refresh_reason,
    rules_fingerprint,
    store_rules_fingerprint,
    stored_rules_fingerprint,
)

FILES = {
    "models/stg_shop__orders.sql": "select * from {{ ref('country_codes') }} where {{ clean('x') }}",
    "models/orders.sql": "select * from {{ ref('stg_shop__orders') }} where r < {{ var('rfm') }}",
    "models/customer_history.sql": "{{ config(full_refresh=false) }} select * from {{ ref('orders') }}",
    "seeds/country_codes.csv": "code\nCN\n",
    "macros/clean.sql": "{% macro clean(x) %}{{ blocked(x) }}{% endmacro %}",
    "macros/blocked.sql": "{% macro blocked(x) %}{{ x }} not in {{ var('identity') }}{% endmacro %}",
    "macros/unused.sql": "{% macro unused() %}{{ var('unused') }}{% endmacro %}",
}
VARS = {"identity": ["n/a"], "rfm": 5, "unused": 1}


def _model(name: str, materialized: str, macros: list[str], **config) -> dict:
    return {"resource_type": "model", "original_file_path": f"models/{name}.sql",
            "config": {"materialized": materialized, **config}, "depends_on": {"macros": macros}}


MANIFEST = {
    "metadata": {"project_name": "cdp"},
    "nodes": {
        "model.cdp.stg_shop__orders": _model("stg_shop__orders", "incremental", ["macro.cdp.clean"]),
        "model.cdp.orders": _model("orders", "table", []),
        # A history a full refresh leaves alone: what it reads does not count.
        "model.cdp.customer_history": _model("customer_history", "incremental", [], full_refresh=False),
        "seed.cdp.country_codes": {"resource_type": "seed", "original_file_path": "seeds/country_codes.csv",
                                   "config": {"materialized": "seed"}, "depends_on": {"macros": []}},
    },
    "parent_map": {"model.cdp.stg_shop__orders": ["seed.cdp.country_codes", "source.cdp.raw.orders"],
                   "model.cdp.orders": ["model.cdp.stg_shop__orders"], "seed.cdp.country_codes": [],
                   "model.cdp.customer_history": ["model.cdp.orders"]},
    "macros": {
        "macro.cdp.clean": {"package_name": "cdp", "original_file_path": "macros/clean.sql",
                            "depends_on": {"macros": ["macro.cdp.blocked", "macro.dbt.split_part"]}},
        "macro.cdp.blocked": {"package_name": "cdp", "original_file_path": "macros/blocked.sql",
                              "depends_on": {"macros": []}},
        "macro.cdp.unused": {"package_name": "cdp", "original_file_path": "macros/unused.sql",
                             "depends_on": {"macros": []}},
        "macro.dbt.split_part": {"package_name": "dbt", "original_file_path": "macros/utils/split_part.sql",
                                 "depends_on": {"macros": []}},
    },
}


@pytest.fixture
def project(tmp_path):
    for relative, text in FILES.items():
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text(text)
    (tmp_path / "dbt_project.yml").write_text(yaml.safe_dump({"name": "cdp", "vars": VARS}))
    return tmp_path


def _changed(project, relative: str, text: str) -> bool:
    before = rules_fingerprint(MANIFEST, project)
    (project / relative).write_text(text)
    return rules_fingerprint(MANIFEST, project) != before


@pytest.mark.parametrize("relative", ["models/stg_shop__orders.sql", "seeds/country_codes.csv",
                                      "macros/clean.sql", "macros/blocked.sql"])
def test_it_changes_with_incremental_sql_what_it_reads_and_the_macros_it_calls(project, relative):
    assert _changed(project, relative, FILES[relative] + "\n-- changed")


@pytest.mark.parametrize("relative", ["models/orders.sql", "models/customer_history.sql", "macros/unused.sql"])
def test_tables_rebuilt_anyway_and_uncalled_macros_do_not_count(project, relative):
    assert not _changed(project, relative, FILES[relative] + "\n-- changed")


@pytest.mark.parametrize("name, counts", [("identity", True), ("rfm", False), ("unused", False)])
def test_only_vars_read_by_that_code_count(project, name, counts):
    changed = {**VARS, name: "something else"}
    assert _changed(project, "dbt_project.yml", yaml.safe_dump({"name": "cdp", "vars": changed})) is counts


def test_it_is_stable_and_reads_the_files_from_disk(project):
    assert rules_fingerprint(MANIFEST, project) == rules_fingerprint(MANIFEST, project)
    (project / "macros/blocked.sql").unlink()
    with pytest.raises(FileNotFoundError):
        rules_fingerprint(MANIFEST, project)


def test_full_refresh_when_asked_when_unknown_or_when_the_rules_changed():
    assert full_refresh_reason("abc", "abc", requested=False) is None
    assert "requested" in full_refresh_reason("abc", "abc", requested=True)
    assert "no record" in full_refresh_reason(None, "abc", requested=False)
    assert "changed" in full_refresh_reason("abc", "def", requested=False)
    assert dbt_build_args(full_refresh=True)[-1] == "--full-refresh"
    assert "--full-refresh" not in dbt_build_args()


def test_the_recorded_fingerprint_is_one_row_replaced_each_time():
    con = duckdb.connect()
    assert stored_rules_fingerprint(con) is None
    store_rules_fingerprint(con, "abc")
    store_rules_fingerprint(con, "def")
    assert stored_rules_fingerprint(con) == "def"
    assert con.execute("select count(*) from audit.dbt_build_rules").fetchone()[0] == 1
