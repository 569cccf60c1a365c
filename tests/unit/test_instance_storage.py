"""The instance storage orchestration/dagster.yaml selects: Dagster's SQLite files, with the event
log's engines kept per shard."""

import shutil
import warnings

import dagster as dg
import pytest

from orchestration import instance_storage
from orchestration.instance_storage import KeptEngineSqliteEventLogStorage
from orchestration.settings import PROJECT_ROOT

DAYS = dg.DailyPartitionsDefinition(start_date="2026-01-01", end_date="2026-01-11")


# Shaped like an ingest asset, whose module silences the same beta warning.
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Parameter `backfill_policy`", category=dg.BetaWarning)

    @dg.asset(partitions_def=DAYS, backfill_policy=dg.BackfillPolicy.single_run(),
              check_specs=[dg.AssetCheckSpec("has_rows", asset="daily")])
    def daily(context: dg.AssetExecutionContext):
        yield dg.MaterializeResult(metadata={"days": len(context.partition_keys)})
        yield dg.AssetCheckResult(check_name="has_rows", passed=True)


def _instance(home, project_settings: bool) -> dg.DagsterInstance:
    home.mkdir(exist_ok=True)
    if project_settings:
        shutil.copyfile(PROJECT_ROOT / "orchestration" / "dagster.yaml", home / "dagster.yaml")
    return dg.DagsterInstance.from_config(str(home))


def _ranged_run(instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    return dg.materialize([daily], instance=instance, tags={
        "dagster/asset_partition_range_start": "2026-01-01", "dagster/asset_partition_range_end": "2026-01-10"})


def test_the_project_instance_keeps_dagsters_files_and_reads_their_history(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with _instance(home, project_settings=False) as default:
        assert type(default.event_log_storage) is not KeptEngineSqliteEventLogStorage
        first = _ranged_run(default)
    # An instance made before this storage was selected: its runs and asset history stay.
    with _instance(home, project_settings=True) as instance:
        assert isinstance(instance.event_log_storage, KeptEngineSqliteEventLogStorage)
        assert instance.event_log_storage._base_dir == str(home / "history" / "runs")
        assert instance.get_run_by_id(first.run_id) is not None
        assert instance.get_materialized_partitions(daily.key) == set(DAYS.get_partition_keys()[:10])
        second = _ranged_run(instance)
        assert second.success
        materialized = instance.fetch_materializations(daily.key, limit=100).records
        assert sorted(record.run_id for record in materialized) == sorted([first.run_id] * 10 + [second.run_id] * 10)
        check = instance.event_log_storage.get_latest_asset_check_execution_by_key(
            [dg.AssetCheckKey(daily.key, "has_rows")])
        assert check[dg.AssetCheckKey(daily.key, "has_rows")].run_id == second.run_id


def test_one_engine_is_kept_per_shard_and_the_least_recent_dropped_beyond_the_bound(tmp_path, monkeypatch):
    monkeypatch.setattr(instance_storage, "KEPT_ENGINES", 3)
    storage = KeptEngineSqliteEventLogStorage(str(tmp_path / "runs"))
    index = storage._engine("index")
    assert storage._engine("index") is index
    for run in ("a", "b", "c"):
        with storage.run_connection(run):
            pass
    # "index" was used least recently and went first; a run used again stays.
    assert list(storage._engines) == ["a", "b", "c"]
    kept = storage._engines["a"]
    with storage.run_connection("a"):
        pass
    with storage.run_connection("d"):
        pass
    assert list(storage._engines) == ["c", "a", "d"] and storage._engines["a"] is kept
    assert storage._engine("index") is not index


@pytest.mark.parametrize("shard", ["run-1", "index"])
def test_a_failed_write_rolls_back_as_dagsters_does(tmp_path, shard):
    storage = KeptEngineSqliteEventLogStorage(str(tmp_path / "runs"))
    with storage._connect(shard) as conn:
        conn.exec_driver_sql("create table t (x integer)")
        conn.exec_driver_sql("insert into t values (1)")
    with pytest.raises(RuntimeError), storage._connect(shard) as conn:
        conn.exec_driver_sql("insert into t values (2)")
        raise RuntimeError("interrupted")
    with storage._connect(shard) as conn:
        assert conn.exec_driver_sql("select x from t").scalars().all() == [1]


def _materializations(instance: dg.DagsterInstance, run_id: str) -> list:
    return [entry for entry in instance.all_logs(run_id)
            if entry.dagster_event and entry.dagster_event.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION]


def test_a_ranged_steps_materialisations_are_written_in_one_transaction_per_shard(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with _instance(home, project_settings=True) as instance:
        storage = instance.event_log_storage
        opened: list[str] = []
        open_shard = storage._open

        def counting(shard):
            opened.append(shard)
            return open_shard(shard)

        monkeypatch.setattr(storage, "_open", counting)
        batches: list[int] = []
        batch = storage.store_event_batch
        monkeypatch.setattr(storage, "store_event_batch", lambda events: (batches.append(len(events)), batch(events)))
        run = _ranged_run(instance)
        assert run.success
        assert 10 in batches  # the step's ten materialisations came as one batch
        assert len(_materializations(instance, run.run_id)) == 10
        batched = len(opened)

        monkeypatch.setenv(instance_storage.EVENT_BATCH_SIZE_ENV, "0")  # Dagster's one write per event
        opened.clear()
        assert _ranged_run(instance).success
        # Ten materialisations (and ten planned events) no longer open two shards each.
        assert len(opened) >= batched + 30


def test_a_batch_that_fails_leaves_nothing_so_it_can_be_written_again(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with _instance(home, project_settings=True) as instance:
        events = _materializations(instance, _ranged_run(instance).run_id)
    target = KeptEngineSqliteEventLogStorage(str(tmp_path / "other"))
    store_event = target.store_event
    written: list = []

    def failing_third(event):
        written.append(event)
        if len(written) == 3:
            raise RuntimeError("disk full")
        store_event(event)

    monkeypatch.setattr(target, "store_event", failing_third)
    with pytest.raises(RuntimeError):
        target.store_event_batch(events)
    assert target.get_logs_for_run(events[0].run_id) == []
    assert target.get_materialized_partitions(daily.key) == set()
    monkeypatch.setattr(target, "store_event", store_event)
    target.store_event_batch(events)
    assert len(target.get_logs_for_run(events[0].run_id)) == 10
    assert len(target.get_materialized_partitions(daily.key)) == 10
