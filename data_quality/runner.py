"""Runs a Great Expectations (GX Core 1.x) suite on a pandas frame and returns a small,
PII-free outcome: counts and expectation names only, never the offending values."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import pandas as pd

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

import great_expectations as gx  # noqa: E402  (after disabling analytics)
from great_expectations.data_context.types.base import ProgressBarsConfig  # noqa: E402
from great_expectations.execution_engine import pandas_execution_engine  # noqa: E402

logging.getLogger("great_expectations").setLevel(logging.WARNING)

# GX fingerprints every frame under this many bytes (an md5 over a hash of every row) only to
# list it among the batch's markers, which SuiteResult does not keep: at a million rows that was
# two thirds of a suite's time. Below 0 bytes nothing is fingerprinted.
pandas_execution_engine.HASH_THRESHOLD = 0


@dataclass(frozen=True)
class ExpectationOutcome:
    expectation: str
    column: str | None
    success: bool
    element_count: int | None
    unexpected_count: int | None


@dataclass
class SuiteResult:
    suite: str
    rows: int
    outcomes: list[ExpectationOutcome] = field(default_factory=list)

    @property
    def success(self) -> bool:
        return all(o.success for o in self.outcomes)

    @property
    def failed(self) -> list[ExpectationOutcome]:
        return [o for o in self.outcomes if not o.success]

    def summary(self) -> str:
        """One line saying what failed, with counts and no row values: the check's description,
        which failure alerts quote."""
        if self.success:
            return f"{len(self.outcomes)} expectations met on {self.rows:,} rows"
        failed = "; ".join(f"{o.expectation}({o.column or 'table'})"
                           + (f": {o.unexpected_count:,} of {o.element_count or self.rows:,} rows"
                              if o.unexpected_count else "")
                           for o in self.failed)
        return f"{len(self.failed)} of {len(self.outcomes)} expectations failed on {self.rows:,} rows: {failed}"

    def metadata(self) -> dict[str, object]:
        """Counts per expectation, safe for an event log (no row values)."""
        table = "| expectation | column | ok | unexpected |\n|---|---|---|---|\n" + "\n".join(
            f"| {o.expectation} | {o.column or ''} | {'yes' if o.success else 'NO'} | {o.unexpected_count or 0} |"
            for o in self.outcomes
        )
        return {
            "suite": self.suite,
            "rows_validated": self.rows,
            "expectations": len(self.outcomes),
            "expectations_failed": len(self.failed),
            "unexpected_total": sum(o.unexpected_count or 0 for o in self.outcomes),
            "results": table,
        }


@lru_cache(maxsize=1)
def _batch_definition():
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    asset = context.data_sources.add_pandas("frames").add_dataframe_asset("frame")
    return asset.add_batch_definition_whole_dataframe("whole_frame")


def bulk_comparable(frame: pd.DataFrame) -> pd.DataFrame:
    """GX compares a column with its bounds in one vectorised step only for int64 and float64
    columns; the narrower and nullable numbers DuckDB returns (int32, Int32, ...) go row by row in
    Python, about half a second per million values. Widens them: int64 without nulls, else
    float64, whose NaN GX treats as null just as it did <NA>."""
    widened = {}
    for name, column in frame.items():
        if pd.api.types.is_integer_dtype(column.dtype) and column.dtype != np.int64:
            widened[name] = "float64" if column.isna().any() else "int64"
        elif pd.api.types.is_float_dtype(column.dtype) and column.dtype != np.float64:
            widened[name] = "float64"
    return frame.astype(widened) if widened else frame


def validate_frame(frame: pd.DataFrame, suite_name: str, expectations: list) -> SuiteResult:
    batch = _batch_definition().get_batch(batch_parameters={"dataframe": bulk_comparable(frame)})
    suite = gx.ExpectationSuite(name=suite_name, expectations=expectations)
    # result_format BASIC keeps counts; values are not copied into the outcome.
    validation = batch.validate(suite, result_format="BASIC")
    outcomes = []
    for result in validation.results:
        config = result.expectation_config
        details = result.result or {}
        outcomes.append(
            ExpectationOutcome(
                expectation=config.type,
                column=config.kwargs.get("column"),
                success=bool(result.success),
                element_count=details.get("element_count"),
                unexpected_count=details.get("unexpected_count"),
            )
        )
    return SuiteResult(suite=suite_name, rows=len(frame), outcomes=outcomes)
