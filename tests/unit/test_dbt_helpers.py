import json

from orchestration.dbt_project import as_of_from_tags, dbt_build_args
from orchestration.partitions import days_in_range

import pytest


def test_build_args_pass_the_as_of_day_as_a_var():
    args = dbt_build_args("2026-10-31")
    assert args[0] == "build"
    assert json.loads(args[args.index("--vars") + 1]) == {"as_of_date": "2026-10-31"}


def test_build_args_without_a_day_leave_the_default_to_dbt():
    assert "--vars" not in dbt_build_args(None)


def test_the_daily_build_leaves_dbt_unit_tests_to_the_test_suite():
    args = dbt_build_args("2026-10-31")
    assert args[args.index("--exclude-resource-type") + 1] == "unit_test"


def test_as_of_is_the_end_of_a_partition_range_or_the_single_partition():
    assert as_of_from_tags({"dagster/asset_partition_range_start": "2026-10-01",
                            "dagster/asset_partition_range_end": "2026-10-31"}) == "2026-10-31"
    assert as_of_from_tags({"dagster/partition": "2026-10-05"}) == "2026-10-05"
    assert as_of_from_tags({}) is None


def test_days_in_range_is_inclusive_and_crosses_months():
    assert days_in_range("2026-01-30", "2026-02-02") == ["2026-01-30", "2026-01-31", "2026-02-01", "2026-02-02"]
    assert days_in_range("2026-03-01", "2026-03-01") == ["2026-03-01"]


def test_days_in_range_rejects_a_reversed_range():
    with pytest.raises(ValueError, match="before it starts"):
        days_in_range("2026-03-02", "2026-03-01")
