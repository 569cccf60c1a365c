import hashlib
import hmac
import logging

import duckdb

from orchestration.privacy import install_key, load_or_create_key


def test_sql_hmac_from_the_installed_pads_equals_python_hmac():
    con = duckdb.connect()
    key = b"a key that is longer than nothing"
    install_key(con, key)
    value = "ann.lee@example.com"
    sql = con.execute(
        "select sha256(opad || unhex(sha256(ipad || encode(?)))) from private.hmac_key", [value]
    ).fetchone()[0]
    assert sql == hmac.new(key, value.encode(), hashlib.sha256).hexdigest()


def test_a_local_key_is_created_once_and_reused(tmp_path, monkeypatch):
    monkeypatch.delenv("CDP_HMAC_KEY", raising=False)
    first = load_or_create_key(tmp_path)
    assert load_or_create_key(tmp_path) == first and len(first) == 64
    assert (tmp_path / "secrets" / "hmac.key").stat().st_mode & 0o077 == 0
    monkeypatch.setenv("CDP_HMAC_KEY", "from-the-environment")
    assert load_or_create_key(tmp_path) == b"from-the-environment"


def test_a_short_key_from_the_environment_is_used_with_a_warning(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("CDP_HMAC_KEY", "abc")
    with caplog.at_level("WARNING", logger="orchestration.privacy"):
        assert load_or_create_key(tmp_path) == b"abc"
    assert "CDP_HMAC_KEY is 3 bytes long" in caplog.text and "abc" not in caplog.text
    caplog.clear()
    monkeypatch.setenv("CDP_HMAC_KEY", "k" * 32)
    with caplog.at_level("WARNING", logger="orchestration.privacy"):
        load_or_create_key(tmp_path)
    assert caplog.text == ""
    # The key asset passes its step log, so the warning reaches the UI's run log as well.
    monkeypatch.setenv("CDP_HMAC_KEY", "abc")
    said: list[str] = []
    load_or_create_key(tmp_path, warn=said.append)
    assert len(said) == 1 and said[0].startswith("CDP_HMAC_KEY is 3 bytes long")


def test_the_key_asset_says_in_its_step_log_when_the_key_is_short_or_changed(tmp_path, monkeypatch, dagster_instance):
    import dagster as dg
    from dagster_duckdb import DuckDBResource

    from orchestration.assets.privacy import hmac_key
    from orchestration.resources import PathsResource

    resources = {
        "warehouse": DuckDBResource(database=str(tmp_path / "warehouse.duckdb")),
        "paths": PathsResource(data_dir=str(tmp_path), landing_dir=str(tmp_path), serve_path=str(tmp_path / "s.duckdb"),
                               model_dir=str(tmp_path), erasure_requests=str(tmp_path / "e.csv")),
    }

    def run_with(key: str) -> tuple[list[str], dict]:
        monkeypatch.setenv("CDP_HMAC_KEY", key)
        result = dg.materialize([hmac_key], resources=resources, instance=dagster_instance)
        warnings = [e.message for e in dagster_instance.all_logs(result.run_id)
                    if e.level == logging.WARNING and e.step_key == "private__hmac_key"]
        return warnings, result.asset_materializations_for_node("private__hmac_key")[0].metadata

    warnings, metadata = run_with("k" * 32)
    assert warnings == [] and metadata["key_changed"].value is False
    warnings, metadata = run_with("s3cr")
    assert any(w.startswith("CDP_HMAC_KEY is 4 bytes long") for w in warnings)
    assert any("the pseudonymisation key changed" in w for w in warnings) and metadata["key_changed"].value is True
    assert not any("s3cr" in w for w in warnings)  # the key itself is never logged
