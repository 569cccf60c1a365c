"""Daily partitions: a partition is one delivery day of every channel."""

from __future__ import annotations

from datetime import date, timedelta

import dagster as dg

from orchestration.settings import Settings

daily_partitions = dg.DailyPartitionsDefinition(start_date=Settings.from_env().start_date.isoformat())


def days_in_range(start: str, end: str) -> list[str]:
    """Every ISO day from start to end, inclusive."""
    first, last = date.fromisoformat(start), date.fromisoformat(end)
    if last < first:
        raise ValueError(f"partition range ends ({end}) before it starts ({start})")
    return [(first + timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]
