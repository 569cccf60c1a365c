"""The Dagster instance's storage: Dagster's own SQLite storage (the same files under
$DAGSTER_HOME), with an event log that keeps one database engine per shard and writes a batch of
events in one transaction per shard.

Dagster's SQLite event log builds a new SQLAlchemy engine for every event it writes or reads, and
with it an empty statement cache, so each insert is compiled again; and it commits two
transactions per asset event (the run's shard and the cross-run index). A year's backfill writes
about 4,000 ingest materialisations, 364 per channel, which Dagster hands over as one batch per
step once DAGSTER_EVENT_BATCH_SIZE is set (below). Kept engines and one transaction per shard for
a batch write them several times faster (README "What made it faster"). Connections are still
opened per use (NullPool, as Dagster does), so several processes share the files as before.

Selected in orchestration/dagster.yaml (`storage: custom`). It replaces Dagster's private
`_connect` and writes batches through Dagster's own `store_event`;
tests/unit/test_instance_storage.py fails if an upgrade stops calling either."""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager

from dagster._core.storage.event_log.sqlite.sqlite_event_log import (
    SQLITE_BUSY_TIMEOUT_SECONDS,
    SqliteEventLogStorage,
)
from dagster._core.storage.sqlite_storage import DagsterSqliteStorage
from sqlalchemy import create_engine
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import NullPool

# Engines kept at once: the index shard and the runs being written or watched. A long-lived
# webserver reads many runs' shards; the least recently used engine is dropped beyond this (it
# holds no connection: NullPool).
KEPT_ENGINES = 32

# Dagster hands a step's per-partition materialisations to the storage as one batch only when
# this is set (read on every event). Set for every process that loads this storage: the CLI's
# runs and those the daemon launches alike. A value in the environment wins.
EVENT_BATCH_SIZE_ENV = "DAGSTER_EVENT_BATCH_SIZE"
os.environ.setdefault(EVENT_BATCH_SIZE_ENV, "1000")


class KeptEngineSqliteEventLogStorage(SqliteEventLogStorage):
    """Dagster's run-sharded SQLite event log with a kept engine per shard and one transaction
    per shard for a batch (see the module)."""

    def __init__(self, base_dir: str, inst_data=None):
        self._engines: OrderedDict[str, Engine] = OrderedDict()
        # The connections a batch holds open in this thread, by shard.
        self._batch = threading.local()
        super().__init__(base_dir, inst_data)

    @classmethod
    def from_config_value(cls, inst_data, config_value):
        return cls(inst_data=inst_data, **config_value)

    def _engine(self, shard: str) -> Engine:
        engine = self._engines.pop(shard, None)
        if engine is None:
            engine = create_engine(self.conn_string_for_shard(shard), poolclass=NullPool,
                                   connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS})
        self._engines[shard] = engine
        while len(self._engines) > KEPT_ENGINES:
            self._engines.popitem(last=False)
        return engine

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:
        # The parent's body with the engine kept: the same lock, lazy schema creation and one
        # transaction per use. Inside a batch (which holds the lock), its connection for the shard.
        held = getattr(self._batch, "connections", None)
        if held is not None:
            if shard not in held:
                held[shard] = self._batch.stack.enter_context(self._open(shard))
            yield held[shard]
            return
        with self._db_lock, self._open(shard) as conn:
            yield conn

    @contextmanager
    def _open(self, shard: str) -> Iterator[Connection]:
        """A connection to the shard inside a transaction; the caller holds the lock."""
        engine = self._engine(shard)
        if shard not in self._initialized_dbs:
            self._initdb(engine)
            self._initialized_dbs.add(shard)
        with engine.connect() as conn, conn.begin():
            yield conn

    def store_event_batch(self, events: Sequence) -> None:
        """Dagster's own writes of each event (`store_event`), in one transaction per shard for
        the whole batch instead of two per event: a step's 364 materialisations of a year's
        partitions commit together. If a write fails, both transactions roll back and Dagster
        writes the events one by one."""
        with self._db_lock, ExitStack() as stack:
            self._batch.connections, self._batch.stack = {}, stack
            try:
                super().store_event_batch(events)
            finally:
                self._batch.connections = self._batch.stack = None


class SqliteStorage(DagsterSqliteStorage):
    """Dagster's default SQLite storage under `base_dir` with the event log above."""

    def __init__(self, base_dir: str, inst_data=None):
        super().__init__(base_dir, inst_data)
        self._event_log_storage = KeptEngineSqliteEventLogStorage(self._event_log_storage._base_dir)

    @classmethod
    def from_config_value(cls, inst_data, config_value):
        return cls.from_local(inst_data=inst_data, **config_value)
