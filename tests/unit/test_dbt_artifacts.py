import os

from orchestration.assets.dbt import stale_invocation_dirs


def test_only_the_newest_invocation_folders_are_kept(tmp_path):
    for age, name in enumerate(["cdp_dbt_models-aaa-1", "cdp_dbt_models-bbb-2", "cdp_dbt_models-ccc-3"]):
        folder = tmp_path / name
        folder.mkdir()
        os.utime(folder, (1_000_000 - age * 100, 1_000_000 - age * 100))  # aaa newest, ccc oldest
    (tmp_path / "manifest.json").write_text("{}")  # the parse artifacts stay
    (tmp_path / "other-folder").mkdir()
    assert stale_invocation_dirs(tmp_path, keep=1) == [tmp_path / "cdp_dbt_models-bbb-2", tmp_path / "cdp_dbt_models-ccc-3"]
    assert stale_invocation_dirs(tmp_path, keep=3) == []
