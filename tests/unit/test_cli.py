import os
import re
from contextlib import nullcontext
from datetime import date
from types import SimpleNamespace

import duckdb

from orchestration.cli import PLANNED_EVENTS_ENV, earlier_data_warning, one_planned_event_per_asset
from orchestration.sources.catalog import load_catalog
from orchestration.sources.landing import ensure_tables


def test_multi_day_runs_opt_in_to_one_planned_event_per_asset_only_while_they_run(monkeypatch):
    monkeypatch.delenv(PLANNED_EVENTS_ENV, raising=False)
    with one_planned_event_per_asset(True):
        assert os.environ[PLANNED_EVENTS_ENV] == "true"
    assert PLANNED_EVENTS_ENV not in os.environ
    with one_planned_event_per_asset(False):
        assert PLANNED_EVENTS_ENV not in os.environ


def test_a_planned_events_setting_in_the_environment_wins(monkeypatch):
    monkeypatch.setenv(PLANNED_EVENTS_ENV, "false")
    with one_planned_event_per_asset(True):
        assert os.environ[PLANNED_EVENTS_ENV] == "false"
    assert os.environ[PLANNED_EVENTS_ENV] == "false"


def test_a_demo_run_warns_when_the_warehouse_holds_days_before_its_range(tmp_path):
    warehouse = tmp_path / "warehouse.duckdb"
    assert earlier_data_warning(warehouse, date(2026, 10, 2)) is None  # no warehouse yet
    con = duckdb.connect(str(warehouse))
    ensure_tables(con, load_catalog()["web_events"])
    con.close()
    assert earlier_data_warning(warehouse, date(2026, 10, 2)) is None  # nothing loaded yet
    con = duckdb.connect(str(warehouse))
    con.execute("insert into audit.load_ledger (channel, partition_start, partition_end) "
                "values ('web_events', date '2025-11-01', date '2026-10-31')")
    con.close()
    assert earlier_data_warning(warehouse, date(2025, 11, 1)) is None  # the same range is reloaded
    warning = earlier_data_warning(warehouse, date(2026, 10, 2))
    assert "2025-11-01" in warning and "make clean" in warning


def _delivered_files_loaded(monkeypatch, tmp_path, first_day: str, last_day: str) -> None:
    """A data folder whose warehouse loaded web events from first_day to last_day, with stand-ins
    for the source systems a run on delivered files needs named."""
    monkeypatch.setenv("CDP_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("CDP_WAREHOUSE_PATH", raising=False)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    monkeypatch.setenv("CDP_CRM_DATABASE_URL", f"sqlite:///{tmp_path / 'crm.sqlite'}")
    monkeypatch.setenv("CDP_HELPDESK_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("CDP_HELPDESK_TOKEN", "t")
    (tmp_path / "data").mkdir()
    con = duckdb.connect(str(tmp_path / "data" / "warehouse.duckdb"))
    ensure_tables(con, load_catalog()["web_events"])
    con.execute("insert into audit.load_ledger (channel, partition_start, partition_end) values ('web_events', ?, ?)",
                [date.fromisoformat(first_day), date.fromisoformat(last_day)])
    con.close()


def test_only_a_demo_run_warns_of_earlier_days_a_daily_run_on_delivered_files_builds_on_them(
        capsys, monkeypatch, tmp_path):
    import orchestration.cli as cli

    monkeypatch.setenv("CDP_START_DATE", "2026-10-01")
    _delivered_files_loaded(monkeypatch, tmp_path, "2026-10-01", "2026-10-30")
    # Everything after the warning is stood in for: only what the run prints before it matters.
    monkeypatch.setattr(cli, "_prepare_instance", lambda: None)
    monkeypatch.setattr("orchestration.dbt_project.prepare_manifest", lambda *a, **k: None)
    monkeypatch.setattr(cli, "generate", lambda *a, **k: SimpleNamespace(people=0, files_written=0, landing_dir=""))
    monkeypatch.setattr(cli, "run_source_systems", lambda *a, **k: nullcontext(["systems"]))
    monkeypatch.setattr(cli, "materialize_range", lambda *a, **k: False)
    cli.main(["run", "--skip-generate", "--end-date", "2026-10-31", "--days", "1"])
    assert "mix both runs" not in capsys.readouterr().err
    cli.main(["run", "--end-date", "2026-10-31", "--days", "1"])
    assert "holds data from 2026-10-01 on, before this run's first day 2026-10-31" in capsys.readouterr().err


def test_a_run_on_delivered_files_starts_its_partitions_where_the_warehouses_loads_start(monkeypatch, tmp_path):
    """`cdp run --skip-generate --days 1` after a year of loads: its day is not the pipeline's
    first, so the volume check has the days before it and the CRM is read since that day only."""
    import orchestration.cli as cli

    monkeypatch.delenv("CDP_START_DATE", raising=False)
    _delivered_files_loaded(monkeypatch, tmp_path, "2025-11-01", "2026-10-31")
    starts = []
    monkeypatch.setattr(cli, "_prepare_instance", lambda: None)
    monkeypatch.setattr("orchestration.dbt_project.prepare_manifest", lambda *a, **k: None)
    monkeypatch.setattr(cli, "run_source_systems", lambda *a, **k: nullcontext(["systems"]))
    monkeypatch.setattr(cli, "materialize_range", lambda *a, **k: starts.append(os.environ["CDP_START_DATE"]))
    cli.main(["run", "--skip-generate", "--end-date", "2026-11-02", "--days", "1"])
    assert starts == ["2025-11-01"]
    # With nothing loaded before, the run's first day is the pipeline's.
    monkeypatch.delenv("CDP_START_DATE")
    monkeypatch.setenv("CDP_DATA_DIR", str(tmp_path / "empty"))
    cli.main(["run", "--skip-generate", "--end-date", "2026-11-02", "--days", "1"])
    assert starts[-1] == "2026-11-02"


def test_the_benchmark_takes_a_history_length_of_at_least_two_days(capsys):
    import pytest

    from orchestration.cli import main

    for wrong in ("1", "a year"):
        with pytest.raises(SystemExit) as exited:
            main(["bench", "--days", wrong])
        assert exited.value.code == 2
        assert "--days" in capsys.readouterr().err
    # The other benchmarks keep the size's days: refused before anything is generated.
    assert main(["bench", "--ingest-only", "--days", "200"]) == 2
    assert "--days sets the history of the pipeline benchmark" in capsys.readouterr().err


def test_demo_and_orders_runs_refuse_counts_below_one_and_dates_that_are_not_dates(capsys):
    import pytest

    from orchestration.cli import main

    for argv, option in ((["run", "--customers", "0"], "--customers"), (["generate", "--days", "-3"], "--days"),
                         (["run", "--end-date", "2026-13-01"], "--end-date"),
                         (["run", "--orders", "orders.csv", "--as-of", "31/10/2026"], "--as-of"),
                         (["run", "--churn-horizon-days", "0"], "--churn-horizon-days")):
        with pytest.raises(SystemExit) as exited:
            main(argv)
        assert exited.value.code == 2
        err = capsys.readouterr().err
        assert option in err and "Traceback" not in err


def test_the_ui_finds_the_projects_dbt_without_an_activated_environment():
    import os
    import shutil
    import sys
    from pathlib import Path

    from orchestration.cli import own_bin_first

    env = own_bin_first({"PATH": "/usr/bin:/bin"})
    assert env["PATH"].split(os.pathsep)[0] == str(Path(sys.executable).parent)
    assert shutil.which("dbt", path=env["PATH"]) == str(Path(sys.executable).with_name("dbt"))


def test_an_unusable_setting_in_the_environment_is_one_clear_line_not_a_traceback(capsys, monkeypatch, tmp_path):
    from orchestration.cli import main

    monkeypatch.setenv("CDP_DATA_DIR", str(tmp_path))
    for name, value, says in (("CDP_START_DATE", "2026-13-01", "is not a date"),
                              ("CDP_DUCKDB_MEMORY_LIMIT", "lots", "is not a memory size DuckDB accepts")):
        with monkeypatch.context() as env:
            env.setenv(name, value)
            assert main(["generate", "--customers", "3", "--days", "2"]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"cdp: {name}='{value}' {says}") and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []  # refused before anything was written


def test_a_serve_file_that_is_the_warehouse_or_a_folder_is_refused_before_anything_runs(capsys, monkeypatch, tmp_path):
    from orchestration.cli import main

    monkeypatch.setenv("CDP_DATA_DIR", str(tmp_path / "data"))
    for name in ("CDP_WAREHOUSE_PATH", "CDP_SERVE_PATH"):
        monkeypatch.delenv(name, raising=False)
    for settings, says in (
        ({"CDP_SERVE_PATH": str(tmp_path / "data" / "warehouse.duckdb")},
         "cdp: CDP_SERVE_PATH and CDP_WAREHOUSE_PATH are the same file"),
        ({"CDP_WAREHOUSE_PATH": str(tmp_path / "w.duckdb"), "CDP_SERVE_PATH": str(tmp_path / "w.duckdb")},
         "cdp: CDP_SERVE_PATH and CDP_WAREHOUSE_PATH are the same file"),
        ({"CDP_WAREHOUSE_PATH": str(tmp_path)}, f"cdp: CDP_WAREHOUSE_PATH='{tmp_path}' is a folder"),
    ):
        with monkeypatch.context() as env:
            for name, value in settings.items():
                env.setenv(name, value)
            assert main(["run", "--customers", "3", "--days", "2"]) == 2
        err = capsys.readouterr().err
        assert err.startswith(says) and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []  # refused before anything was written


def test_a_second_cli_run_on_the_same_instance_says_it_waits_and_starts_after_the_first(tmp_path, capsys):
    import threading

    import dagster as dg

    from orchestration.cli import _exclusive_cli_run

    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        entered, released = threading.Event(), threading.Event()

        def first():
            with _exclusive_cli_run(instance):
                entered.set()
                released.wait(10)

        runner = threading.Thread(target=first)
        runner.start()
        assert entered.wait(10)
        threading.Timer(0.5, released.set).start()
        with _exclusive_cli_run(instance):
            assert released.is_set()
        runner.join()
    assert f"another cdp run is using {tmp_path}: waiting for it to finish" in capsys.readouterr().out


def test_a_demo_run_refuses_to_generate_into_one_folder_and_read_another(capsys, monkeypatch, tmp_path):
    from orchestration.cli import main

    monkeypatch.setenv("CDP_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CDP_LANDING_DIR", str(tmp_path / "elsewhere"))
    assert main(["run", "--customers", "3", "--days", "2"]) == 2
    assert f"but CDP_LANDING_DIR is {tmp_path / 'elsewhere'}: unset it, or add --skip-generate" in capsys.readouterr().err
    assert not (tmp_path / "data").exists()


def test_the_ui_refuses_a_port_in_use_before_starting_anything(capsys, monkeypatch, tmp_path):
    import socket

    import pytest

    from orchestration.cli import main, port_is_free

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert not port_is_free(port)
        monkeypatch.setenv("CDP_DATA_DIR", str(tmp_path))
        assert main(["ui", "--port", str(port)]) == 2
        assert f"port {port} on 127.0.0.1 is in use" in capsys.readouterr().err
    assert port_is_free(port)
    assert list(tmp_path.iterdir()) == []
    for wrong in ("0", "70000", "http"):
        with pytest.raises(SystemExit):
            main(["ui", "--port", wrong])
        assert "--port" in capsys.readouterr().err


def test_the_summary_names_the_ui_command_that_shows_this_runs_instance_and_days(monkeypatch, tmp_path):
    import dataclasses

    from orchestration.cli import ui_command
    from orchestration.settings import PROJECT_ROOT, Settings

    for path in ("CDP_LANDING_DIR", "CDP_WAREHOUSE_PATH", "CDP_SERVE_PATH", "CDP_MODEL_DIR", "CDP_ERASURE_REQUESTS"):
        monkeypatch.delenv(path, raising=False)
    monkeypatch.setenv("DAGSTER_HOME", str(PROJECT_ROOT / "data" / "dagster_home"))
    monkeypatch.setenv("CDP_DATA_DIR", str(PROJECT_ROOT / "data"))
    demo = dataclasses.replace(Settings.from_env(), start_date=date(2026, 8, 2))
    assert ui_command(demo) == "make ui"
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "byo" / "dagster_home"))
    monkeypatch.setenv("CDP_DATA_DIR", str(tmp_path / "byo"))
    orders = dataclasses.replace(Settings.from_env(), start_date=date(1997, 1, 1))
    assert ui_command(orders) == f"CDP_DATA_DIR={tmp_path / 'byo'} CDP_START_DATE=1997-01-01 make ui"
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "elsewhere"))
    assert ui_command(orders).startswith(f"CDP_DATA_DIR={tmp_path / 'byo'} DAGSTER_HOME={tmp_path / 'elsewhere'} ")
    monkeypatch.setenv("DAGSTER_HOME", str(PROJECT_ROOT / "data" / "dagster_home"))
    own = dataclasses.replace(demo, landing_dir=str(tmp_path / "exports"), serve_path=tmp_path / "bi" / "serve.duckdb")
    assert ui_command(own) == f"CDP_LANDING_DIR={tmp_path / 'exports'} CDP_SERVE_PATH={tmp_path / 'bi' / 'serve.duckdb'} make ui"


def test_the_newest_day_a_run_can_cover_is_dagsters_newest_daily_partition():
    from datetime import datetime, timedelta, timezone

    import dagster as dg

    from orchestration.cli import last_finished_day

    partitions = dg.DailyPartitionsDefinition(start_date="2025-01-01")
    for now in (datetime(2026, 12, 7, 0, 0, 1, tzinfo=timezone.utc), datetime(2026, 12, 7, 23, 59, tzinfo=timezone.utc),
                datetime(2026, 12, 7, 2, 0, tzinfo=timezone(timedelta(hours=8)))):  # still 6 December in UTC
        with dg.partition_loading_context(effective_dt=now):
            assert last_finished_day(now).isoformat() == partitions.get_last_partition_key()


def test_runs_refuse_a_day_that_is_not_over_and_options_of_the_other_kind_of_run(capsys, monkeypatch, tmp_path):
    from datetime import datetime, timedelta, timezone

    from orchestration.cli import main

    monkeypatch.setenv("CDP_DATA_DIR", str(tmp_path))
    today = datetime.now(timezone.utc).date()
    yesterday = today - timedelta(days=1)
    for argv, says in (
        (["run", "--customers", "3", "--days", "2", "--end-date", today.isoformat()],
         f"--end-date {today} is not over yet: the newest day a run can cover is {yesterday}"),
        (["run", "--orders", "orders.csv", "--as-of", (today + timedelta(days=30)).isoformat()],
         f"the newest day a run can cover is {yesterday}"),
        (["run", "--as-of", "2026-10-31"], "--as-of, --since, --columns and --encoding describe an orders file"),
        (["run", "--since", "2026-01-01"], "add --orders FILE"),
        (["run", "--orders", "orders.csv", "--as-of", "2026-10-31", "--since", "2026-11-01"],
         "--since 2026-11-01 is after --as-of 2026-10-31"),
        (["run", "--columns", "amount=total"], "add --orders FILE"),
        (["run", "--churn-horizon-days", "60"], "--churn-horizon-days and --clv-horizon-days apply to an orders run"),
        (["run", "--skip-generate", "--clv-horizon-days", "30"], "add --orders FILE, or set the horizons in ml/config.py"),
        (["run", "--orders", "orders.csv", "--as-of", "2026-10-31", "--days", "30", "--skip-generate"],
         "--days, --skip-generate shape the demo data"),
    ):
        assert main(argv) == 2
        assert says in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []  # refused before anything was written


def test_the_benchmark_refuses_an_out_file_it_could_not_write_before_it_starts(capsys, tmp_path):
    from orchestration.cli import main

    (tmp_path / "a-file").write_text("")
    for out, says in ((tmp_path, "is a folder"), (tmp_path / "a-file" / "bench.json", "its folder cannot be created")):
        assert main(["bench", "--size", "small", "--out", str(out)]) == 2
        assert capsys.readouterr().err.startswith(f"--out {out}: {says}")


def test_the_benchmark_keeps_its_folder_only_in_an_empty_one(capsys, tmp_path):
    from orchestration.cli import main

    (tmp_path / "earlier-run").write_text("")
    for argv, says in ((["--keep", str(tmp_path)], "must be an empty folder or not exist yet"),
                       (["--keep", str(tmp_path / "earlier-run")], "must be an empty folder or not exist yet"),
                       (["--ingest-only", "--keep", str(tmp_path / "new")], "--keep keeps the pipeline benchmark's")):
        assert main(["bench", "--size", "small", *argv]) == 2
        assert says in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["earlier-run"]


def test_the_summary_counts_the_rows_kept_aside_with_the_commonest_reasons(tmp_path):
    from orchestration.cli import quarantine_summary

    warehouse = tmp_path / "warehouse.duckdb"
    con = duckdb.connect(str(warehouse))
    for name in ("online_orders", "web_events"):
        ensure_tables(con, load_catalog()[name])
    con.close()
    assert quarantine_summary(warehouse) == "none"
    con = duckdb.connect(str(warehouse))
    for table, reason, n in (("online_orders", "unknown currency", 3), ("web_events", "unknown event_type", 5),
                             ("web_events", "malformed JSON line", 1), ("online_orders", "unparseable amount in amount", 1)):
        con.execute(f"insert into quarantine.{table} (record, reason) select 'r', ? from range({n})", [reason])
    # Held for writing (by a run, or here by this process): no count, no error.
    assert quarantine_summary(warehouse) == "not counted: another process holds the warehouse"
    con.close()
    assert quarantine_summary(warehouse) == (
        "10 (web_events: unknown event_type 5, online_orders: unknown currency 3, online_orders: unparseable amount "
        "in amount 1, and 1 more reason); each in quarantine.<channel> with its reason")


def test_a_run_on_delivered_files_reads_the_users_systems_and_the_demos_only_for_the_others(monkeypatch, tmp_path):
    from orchestration.demo import run_source_systems
    from orchestration.settings import Settings
    from orchestration.sources.demo_data import DemoConfig, generate

    monkeypatch.setenv("CDP_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("CDP_CRM_DATABASE_URL", raising=False)
    monkeypatch.setenv("CDP_HELPDESK_URL", "http://127.0.0.1:9")
    settings = Settings.from_env()
    generate(settings.data_dir, DemoConfig(customers=3, days=2))

    with run_source_systems(settings, own=True) as systems:
        assert systems == [f"demo CRM database: sqlite:///{tmp_path / 'source_systems' / 'crm.sqlite'}",
                           "helpdesk API: yours, from CDP_HELPDESK_URL"]
        assert os.environ["CDP_HELPDESK_URL"] == "http://127.0.0.1:9"
        assert os.environ["CDP_CRM_DATABASE_URL"] == f"sqlite:///{tmp_path / 'source_systems' / 'crm.sqlite'}"
    assert "CDP_CRM_DATABASE_URL" not in os.environ

    # Demo data is read from the demo's systems, whatever the environment points at.
    with run_source_systems(settings, own=False) as systems:
        assert systems[1].startswith("demo helpdesk API: http://127.0.0.1:")
        assert os.environ["CDP_HELPDESK_URL"] != "http://127.0.0.1:9"
    assert os.environ["CDP_HELPDESK_URL"] == "http://127.0.0.1:9"


def test_a_run_on_delivered_files_without_source_systems_names_the_variables_to_set(capsys, monkeypatch, tmp_path):
    from orchestration.cli import main

    monkeypatch.setenv("CDP_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    monkeypatch.delenv("CDP_CRM_DATABASE_URL", raising=False)
    monkeypatch.setenv("CDP_HELPDESK_URL", "http://127.0.0.1:9")
    assert main(["run", "--skip-generate", "--end-date", "2026-10-31", "--days", "2"]) == 2
    err = capsys.readouterr().err
    assert "has no demo source systems to stand in for yours: set CDP_CRM_DATABASE_URL, or disable" in err
    assert "Traceback" not in err
    # Your own helpdesk without its token is found before the run, not after the other channels loaded.
    monkeypatch.setenv("CDP_CRM_DATABASE_URL", f"sqlite:///{tmp_path / 'crm.sqlite'}")
    monkeypatch.delenv("CDP_HELPDESK_TOKEN", raising=False)
    assert main(["run", "--skip-generate", "--end-date", "2026-10-31", "--days", "2"]) == 2
    assert "your own API needs its token: set CDP_HELPDESK_TOKEN" in capsys.readouterr().err
    assert not (tmp_path / "dagster_home").exists()  # refused before anything was prepared


def test_an_orders_run_never_clears_a_landing_folder_of_your_own(capsys, monkeypatch, tmp_path):
    from orchestration.cli import main

    exports = tmp_path / "exports" / "online_orders"
    exports.mkdir(parents=True)
    (exports / "online_orders_2026-10-01.csv").write_text("order_id\n")
    monkeypatch.setenv("CDP_DATA_DIR", str(tmp_path / "byo"))
    monkeypatch.setenv("CDP_LANDING_DIR", str(tmp_path / "exports"))
    assert main(["run", "--orders", str(tmp_path / "missing.csv"), "--as-of", "2026-10-31"]) == 2
    assert f"and CDP_LANDING_DIR is {tmp_path / 'exports'}: unset it for an orders run" in capsys.readouterr().err
    assert (exports / "online_orders_2026-10-01.csv").exists()


def test_the_terminal_shows_an_expected_failure_by_its_reason_and_a_bug_with_its_trace(capfd):
    """Bad input fails a step with `dagster.Failure` and a reason meant for the user, or by a
    blocking check: `cdp run` prints the reason without Dagster's stack; an error nobody expected
    keeps its trace."""
    import dagster as dg

    from orchestration.cli import _console_logger

    @dg.asset
    def bad_file():
        raise dg.Failure(description="online_orders: day.csv lacks columns ['order_id']")

    @dg.asset(check_specs=[dg.AssetCheckSpec("volume", asset="thin_day", blocking=True)])
    def thin_day():
        return dg.MaterializeResult(check_results=[dg.AssetCheckResult(check_name="volume", passed=False)])

    @dg.asset
    def bug():
        raise KeyError("no such column")

    assets = [bad_file, thin_day, bug]
    job = dg.define_asset_job("probe").resolve(asset_graph=dg.Definitions(assets=assets).resolve_asset_graph())
    result = job.with_logger_defs({"console": _console_logger()}).execute_in_process(
        instance=dg.DagsterInstance.ephemeral(), raise_on_error=False,
        run_config={"loggers": {"console": {"config": {"log_level": "INFO"}}}})  # as materialize_range
    assert not result.success
    err = capfd.readouterr().err
    # Up to the next log line (each starts with its time).
    failed = re.split(r"\n\d{4}-\d\d-\d\d ", err.split('Execution of step "bad_file" failed.')[1])[0]
    assert failed.strip() == "online_orders: day.csv lacks columns ['order_id']"
    stopped = re.split(r"\n\d{4}-\d\d-\d\d ", err.split('Execution of step "thin_day" failed.')[1])[0]
    assert stopped.strip() == "1 blocking asset check failed with ERROR severity:\nthin_day: volume"
    crashed = err.split('Execution of step "bug" failed.')[1]
    assert "KeyError" in crashed and "Stack Trace:" in crashed and 'File "' in crashed


def test_ctrl_c_in_a_step_is_shown_without_dagsters_stack():
    import logging

    from orchestration.cli import ExpectedFailureWithoutStack

    message = ('Execution of step "raw__web_events" failed.\n\ndagster._core.errors.DagsterExecutionInterruptedError'
               '\n\nStack Trace:\n  File "/venv/dagster/_core/execution/plan/execute_plan.py", line 245')
    record = logging.LogRecord("dagster", logging.ERROR, __file__, 1, message, None, None)
    ExpectedFailureWithoutStack().filter(record)
    assert record.getMessage() == 'Execution of step "raw__web_events" failed.\n\ninterrupted (Ctrl-C)'


def test_an_interrupted_run_is_told_apart_from_a_failed_one():
    import dagster as dg
    from dagster._core.errors import DagsterExecutionInterruptedError

    from orchestration.cli import was_interrupted

    @dg.asset
    def stopped():
        raise DagsterExecutionInterruptedError()

    @dg.asset
    def broken():
        raise dg.Failure(description="bad file")

    instance = dg.DagsterInstance.ephemeral()
    interrupted = dg.materialize([stopped], instance=instance, raise_on_error=False)
    failed = dg.materialize([broken], instance=instance, raise_on_error=False)
    assert not interrupted.success and not failed.success
    assert was_interrupted(instance, interrupted.run_id)
    assert not was_interrupted(instance, failed.run_id)


def test_a_broken_catalog_or_ctrl_c_is_one_line_not_a_traceback(capsys, monkeypatch):
    import orchestration.cli as cli
    from orchestration.sources.catalog import CatalogError

    def broken(args):
        raise CatalogError("catalog.yml: service_messages reads service_tickets, which is disabled: "
                           "disable 'service_messages' too")

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "cmd_prepare", broken)
    assert cli.main(["prepare"]) == 2
    assert capsys.readouterr().err == ("cdp: catalog.yml: service_messages reads service_tickets, which is "
                                       "disabled: disable 'service_messages' too\n")
    monkeypatch.setattr(cli, "cmd_prepare", interrupted)
    assert cli.main(["prepare"]) == 130
    assert capsys.readouterr().err.startswith("cdp: interrupted")


def test_a_relative_data_folder_gives_dagster_an_absolute_home(monkeypatch, tmp_path):
    import orchestration.cli as cli

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CDP_DATA_DIR", "reldata")
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    assert cli._prepare_instance() == tmp_path / "reldata" / "dagster_home"
    assert os.environ["DAGSTER_HOME"] == str(tmp_path / "reldata" / "dagster_home")
    monkeypatch.setenv("DAGSTER_HOME", "relhome")  # as `make` exported it before
    assert cli._prepare_instance() == tmp_path / "relhome"


def test_a_mistyped_orders_file_leaves_the_last_imports_daily_files(capsys, monkeypatch, tmp_path):
    import orchestration.cli as cli

    monkeypatch.setenv("CDP_DATA_DIR", str(tmp_path / "byo"))
    monkeypatch.delenv("CDP_LANDING_DIR", raising=False)
    last = tmp_path / "byo" / "landing" / "online_orders"
    last.mkdir(parents=True)
    (last / "online_orders_2026-10-30.csv").write_text("order_id\n")
    assert cli.main(["run", "--orders", str(tmp_path / "typo.csv"), "--as-of", "2026-10-31"]) == 2
    assert "no such file" in capsys.readouterr().err
    assert [p.name for p in (tmp_path / "byo" / "landing").iterdir()] == ["online_orders"]
    assert (last / "online_orders_2026-10-30.csv").exists()
    # A file that can be read replaces them (the run itself is stood in for).
    orders = tmp_path / "orders.csv"
    orders.write_text("customer_id,order_time,amount\nK1,2026-10-31 10:00:00,12.50\n")
    monkeypatch.setattr(cli, "_prepare_instance", lambda: None)
    monkeypatch.setattr("orchestration.dbt_project.prepare_manifest", lambda *a, **k: None)
    monkeypatch.setattr(cli, "materialize_range", lambda *a, **k: False)
    cli.main(["run", "--orders", str(orders), "--as-of", "2026-10-31"])
    assert [p.name for p in last.iterdir()] == ["online_orders_2026-10-31.csv"]
    assert [p.name for p in (tmp_path / "byo" / "landing").iterdir()] == ["online_orders"]
