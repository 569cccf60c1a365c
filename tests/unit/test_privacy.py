import hashlib
import hmac

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
