"""One entry point for every connector kind: load a channel's days into raw/quarantine."""

from __future__ import annotations

import time
from datetime import date, datetime, time as dtime, timedelta
from pathlib import Path

import duckdb

from orchestration.sources import files, rest, sql
from orchestration.sources.catalog import Channel
from orchestration.sources.errors import SourceError
from orchestration.sources.landing import LoadResult, create_incoming, land, stage_frames


# The cursor window of a load from the first partition day opens here: what the source changed
# before the pipeline's first day (members last edited years ago) belongs to that first load.
HISTORY_START = datetime(1970, 1, 1)


def _window(days: list[str], first_load: bool = False) -> tuple[datetime, datetime]:
    """[first day 00:00, day after the last 00:00) in UTC: the cursor window of a partition range,
    open at the start for the load of the pipeline's first day."""
    start = HISTORY_START if first_load else datetime.combine(date.fromisoformat(min(days)), dtime())
    return start, datetime.combine(date.fromisoformat(max(days)) + timedelta(days=1), dtime())


def sql_source(channel: Channel, data_dir: Path) -> sql.SqlSource:
    url = (channel.option("url") or "").replace("{data_dir}", str(data_dir))
    return sql.SqlSource(url=url, table=channel.option("table"), cursor_column=channel.event_time,
                         key_column=channel.natural_key)


def rest_source(channel: Channel) -> rest.RestSource:
    return rest.RestSource(
        base_url=channel.option("base_url"),
        endpoint=channel.option("endpoint"),
        token_env=channel.options.get("token_env"),
        pagination=channel.option("pagination", "cursor"),
        page_size=int(channel.option("page_size", 500)),
    )


def load_channel(
    con: duckdb.DuckDBPyConnection, channel: Channel, days: list[str], load_id: str, landing_dir: str | Path,
    data_dir: Path, first_load: bool = False
) -> LoadResult:
    """Load `days` of one channel, whatever its connector; raises SourceError naming the source.
    A database's or API's load from the pipeline's first day (`first_load`) also takes every row
    changed before it, on that first day: a CRM holds members last edited long before."""
    if channel.connector == "files":
        return files.load_partition(con, channel, landing_dir, days, load_id)
    started = time.monotonic()
    since, until = _window(days, first_load)
    if channel.connector == "sql":
        source = sql_source(channel, data_dir)
        frames = sql.fetch_window(source, list(channel.columns), since, until)
        location = f"{sql.masked_url(source.url)} table {source.table}"
    elif channel.connector == "rest":
        source = rest_source(channel)
        frames = rest.fetch_window(source, list(channel.columns), since, until)
        location = f"{source.base_url}{source.endpoint}"
    else:  # the catalog validates connectors; this is a programming error
        raise SourceError(f"{channel.name}: no connector {channel.connector!r}")
    result = LoadResult(channel=channel.name, load_id=load_id, partition_start=min(days),
                        partition_end=max(days), source_location=location)
    create_incoming(con, channel)
    result.units = stage_frames(con, channel, frames, channel.event_time, min(days))
    return land(con, channel, result, started)
