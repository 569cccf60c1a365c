"""`cdp`: the project's command line (what `make run` and `make ui` call).

  cdp prepare             build the dbt manifest and the Dagster instance settings
  cdp bench [--size S] [--days N]  the whole graph at a chosen demo size: a full build, then one
                          daily increment; seconds, rows and rows/s per stage, peak memory
  cdp bench --ingest-only ingestion speed per channel
  cdp bench --publish-only the daily publish of history against its length
  cdp ui                  the Dagster UI on 127.0.0.1, with the demo CRM database and helpdesk API
  cdp generate [...]      write demo data into the landing folder
  cdp run [...]           demo data → every asset (ingest → dbt → ML → checks → publish) → summary
  cdp run --orders FILE --as-of YYYY-MM-DD [--since YYYY-MM-DD] [--encoding gbk]
          [--columns customer_id=..,ordered_at=..,amount=..]
                          your own orders export through the same pipeline (data in data/byo/)
"""

from __future__ import annotations

import argparse
import fcntl
import json
import logging
import os
import shutil
import signal
import sys
import tempfile
from contextlib import contextmanager
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from ml.config import ChurnConfig, ClvConfig
from orchestration.byo import MAX_HISTORY_YEARS
from orchestration.demo import missing_api_tokens, run_source_systems, unset_source_systems
from orchestration.settings import (
    DEFAULT_START_DATE,
    PATH_SETTINGS,
    PROJECT_ROOT,
    Settings,
    SettingsError,
    default_path,
    is_url,
)
from orchestration.sources.catalog import CatalogError
from orchestration.sources.demo_data import DemoConfig, generate
from orchestration.sources.files import CODECS


def _prepare_instance() -> Path:
    # Dagster wants an absolute home; a relative CDP_DATA_DIR or DAGSTER_HOME is the working folder's.
    home = Path(os.environ.get("DAGSTER_HOME") or Settings.from_env().data_dir / "dagster_home").resolve()
    os.environ["DAGSTER_HOME"] = str(home)
    home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(PROJECT_ROOT / "orchestration" / "dagster.yaml", home / "dagster.yaml")
    return home


def cmd_prepare(_: argparse.Namespace) -> int:
    from orchestration.dbt_project import prepare_manifest

    home = _prepare_instance()
    prepare_manifest(force=True)
    print(f"dbt manifest built; Dagster instance at {home}")
    return 0


def _whole_number(minimum: int, why: str = ""):
    """An argparse type: a whole number of at least `minimum` (`why` says why, if not obvious)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"at least {minimum}{why}, not {value}")
        return value
    return parse


# A count of customers or days, or a horizon in days.
_at_least_one = _whole_number(1)


def _port(text: str) -> int:
    port = _whole_number(1)(text)
    if port > 65535:
        raise argparse.ArgumentTypeError(f"a port is at most 65535, not {port}")
    return port
# --days of the benchmark: a full build needs one day before the increment's.
_history_days = _whole_number(2, " days (a full build, then one day's increment)")


def _iso_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"not a date as YYYY-MM-DD: {text!r} ({error})") from None


def unwritable_file(path: Path) -> str | None:
    """Why `path` cannot be written as a file (its folder is created if missing), or None."""
    if path.is_dir():
        return "is a folder; name the JSON file"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        return f"its folder cannot be created ({error.strerror})"
    if not os.access(path.parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        return "is not writable"
    return None


def cmd_bench(args: argparse.Namespace) -> int:
    from orchestration.benchmark import bench_ingest, bench_pipeline, bench_publish

    if args.days is not None and (args.ingest_only or args.publish_only):
        print("--days sets the history of the pipeline benchmark; --ingest-only and --publish-only keep the "
              "size's 365 days", file=sys.stderr)
        return 2
    if args.keep is not None and (args.ingest_only or args.publish_only):
        print("--keep keeps the pipeline benchmark's folder; --ingest-only and --publish-only clean up theirs",
              file=sys.stderr)
        return 2
    if args.keep is not None and args.keep.exists() and (not args.keep.is_dir() or any(args.keep.iterdir())):
        print(f"--keep {args.keep}: must be an empty folder or not exist yet", file=sys.stderr)
        return 2
    if args.out is not None:
        problem = unwritable_file(args.out)
        if problem:  # found now, not after the benchmark's hour
            print(f"--out {args.out}: {problem}", file=sys.stderr)
            return 2
    # A stopped benchmark (kill, a CI timeout) still removes its temporary folder: tens of GB at `large`.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    if args.ingest_only:
        bench_ingest(args.size, args.out)
        return 0
    if args.publish_only:
        bench_publish(args.size, args.out)
        return 0
    report = bench_pipeline(args.size, args.out, days=args.days, keep=args.keep.resolve() if args.keep else None)
    return 0 if all(run["succeeded"] for run in report["runs"]) else 1


def own_bin_first(environ) -> dict[str, str]:
    """`environ` with this Python's scripts folder first on PATH: the code server `dagster dev`
    starts prepares the dbt manifest with the `dbt` on PATH (dagster-dbt's prepare_if_dev), so
    `.venv/bin/cdp ui` works without an activated environment, as `make ui` does."""
    return {**environ, "PATH": os.pathsep.join([str(Path(sys.executable).parent), environ.get("PATH", "")])}


def port_is_free(port: int) -> bool:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the webserver binds
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def cmd_ui(args: argparse.Namespace) -> int:
    """`dagster dev` on 127.0.0.1, with the demo's CRM database and helpdesk API up when the
    demo data exists (runs launched from the UI read them)."""
    import subprocess

    from orchestration.dbt_project import prepare_manifest

    settings = Settings.from_env()
    if not port_is_free(args.port):
        # dagster dev would start its daemon anyway and keep running without a UI.
        print(f"port {args.port} on 127.0.0.1 is in use: choose another with `cdp ui --port N` "
              "(or `make ui PORT=N`)", file=sys.stderr)
        return 2
    _prepare_instance()
    prepare_manifest(force=True)
    command = [str(Path(sys.executable).with_name("dagster")), "dev", "-w", str(PROJECT_ROOT / "workspace.yaml"),
               "-h", "127.0.0.1", "-p", str(args.port)]
    with run_source_systems(settings, own=True) as systems:
        print("; ".join(systems + [f"Dagster UI at http://127.0.0.1:{args.port}"]))
        try:
            # The environment as the demo systems set it: their addresses and token.
            return subprocess.call(command, cwd=PROJECT_ROOT, env=own_bin_first(os.environ))
        except KeyboardInterrupt:
            return 0


# The demo's options: left out, they are DemoConfig's defaults (None tells an orders run they were not given).
DEMO_OPTIONS = {"customers": "--customers", "days": "--days", "end_date": "--end-date", "seed": "--seed"}


def _demo_config(args: argparse.Namespace) -> DemoConfig:
    return DemoConfig(**{name: getattr(args, name) for name in DEMO_OPTIONS if getattr(args, name) is not None})


def last_finished_day(now: datetime | None = None) -> date:
    """The newest daily partition: Dagster's daily partitions are UTC days, and a day becomes a
    partition once it is over."""
    return (now or datetime.now(timezone.utc)).astimezone(timezone.utc).date() - timedelta(days=1)


def unfinished_day_error(day: date, option: str) -> str | None:
    """Why a run cannot end on `day`: it has no partition yet (today, or a day still to come)."""
    last = last_finished_day()
    if day <= last:
        return None
    return f"{option} {day} is not over yet: the newest day a run can cover is {last} (days are UTC)"


def cmd_generate(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    summary = generate(settings.data_dir, _demo_config(args), progress=True)
    print(f"{summary.files_written} files for {summary.people} people in {summary.landing_dir}")
    return 0


CLI_RUN_TAG = "cdp/launched_by"


@contextmanager
def _exclusive_cli_run(instance):
    """One `cdp run` at a time per Dagster instance (a second one waits here, queued). Holding
    the lock proves no other CLI run is alive, so a CLI run still marked as started was killed
    (kill -9, power loss): it is marked failed and its warehouse pool slot freed, or every
    later run would wait for that slot forever."""
    import dagster as dg

    lock_path = Path(instance.root_directory or tempfile.gettempdir()) / "cdp-run.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"another cdp run is using {instance.root_directory}: waiting for it to finish", flush=True)
            fcntl.flock(lock, fcntl.LOCK_EX)
        interrupted = instance.get_runs(filters=dg.RunsFilter(
            statuses=[dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.NOT_STARTED],
            tags={CLI_RUN_TAG: "cli"}))
        for run in interrupted:
            instance.report_run_failed(run, "interrupted: the process running it ended without finishing it")
            instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
            print(f"marked interrupted run {run.run_id[:8]} as failed and freed its warehouse slot")
        yield


# Dagster's opt-in to write one "planned" event per asset for a multi-day run instead of one per
# asset and day: a year of history is ~4,000 fewer events at ~25 ms each in the SQLite event log.
# The cost: if such a run fails, its days show as missing rather than failed in the UI (the run
# itself shows failed). Single-day runs, the schedule's, keep Dagster's default; a value set in
# the environment wins either way.
PLANNED_EVENTS_ENV = "DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS"


@contextmanager
def one_planned_event_per_asset(enabled: bool):
    """Opt in (PLANNED_EVENTS_ENV) for the run created inside, unless the environment decides."""
    owned = enabled and PLANNED_EVENTS_ENV not in os.environ
    if owned:
        os.environ[PLANNED_EVENTS_ENV] = "true"
    try:
        yield
    finally:
        if owned:
            os.environ.pop(PLANNED_EVENTS_ENV, None)


# Dagster's console line for a failed step or run: the error's class and reason, then the stack
# of Dagster's own frames that raised it. Expected: `dagster.Failure` (what the pipeline raises
# for bad input, with a reason meant for the user), a failed blocking check and Ctrl-C.
_INTERRUPTED = "DagsterExecutionInterruptedError"
# Each expected failure's prefix, and what the terminal shows in its place.
_EXPECTED = {"dagster._core.definitions.events.Failure: ": "", "dagster._core.errors.DagsterAssetCheckFailedError: ": "",
             f"dagster._core.errors.{_INTERRUPTED}": "interrupted (Ctrl-C)"}
_STACK = "\n\nStack Trace:"


class ExpectedFailureWithoutStack(logging.Filter):
    """Keeps an expected failure's reason on the terminal and drops its stack trace; any other
    error keeps its trace. The run's log keeps both."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        expected = next((prefix for prefix in _EXPECTED if prefix in message), None)
        if expected and _STACK in message:
            record.msg, record.args = message.split(_STACK, 1)[0].replace(expected, _EXPECTED[expected]), None
        return True


def _console_logger():
    import dagster as dg
    from dagster._utils.log import create_console_logger

    @dg.logger(dg.Field({"log_level": dg.Field(str, is_required=False, default_value="INFO")}),
               description="Dagster's console logger, without the stack trace of an expected failure.")
    def console(init_context):
        logger = create_console_logger("dagster", init_context.logger_config["log_level"])
        for handler in logger.handlers:
            handler.addFilter(ExpectedFailureWithoutStack())
        return logger

    return console


def materialize_range(start: str, end: str, instance=None, job: str = "daily_refresh", ops: dict | None = None,
                      as_of: str | None = None) -> bool:
    """Run a partitioned job over [start, end] as one run (the ingest assets read all days at
    once), recorded in the Dagster instance of $DAGSTER_HOME unless another is given. `as_of`:
    the day the marts describe, whatever later days the warehouse holds (default: see
    orchestration.dbt_project.as_of_from_tags)."""
    import dagster as dg

    from orchestration.dbt_project import AS_OF_TAG, PARTITION_RANGE_END_TAG, PARTITION_RANGE_START_TAG
    from orchestration.definitions import defs

    instance = instance or dg.DagsterInstance.get()
    # Step-level progress on the terminal; every event is still in the run's log in the UI.
    run_config: dict = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}
    if ops:
        run_config["ops"] = ops
    with _exclusive_cli_run(instance), one_planned_event_per_asset(start != end):
        result = defs.resolve_job_def(job).with_logger_defs({"console": _console_logger()}).execute_in_process(
            instance=instance,
            tags={PARTITION_RANGE_START_TAG: start, PARTITION_RANGE_END_TAG: end, CLI_RUN_TAG: "cli",
                  **({AS_OF_TAG: as_of} if as_of else {})},
            run_config=run_config,
            raise_on_error=False,
        )
    if not result.success:
        if was_interrupted(instance, result.run_id):
            raise KeyboardInterrupt  # Ctrl-C: no failure to report (main says how to finish the run)
        report_failure(instance, job, result.run_id)
    return result.success


def was_interrupted(instance, run_id: str) -> bool:
    """Whether a step of the run failed because the run was interrupted (Ctrl-C): Dagster stops
    the steps of an in-process run with an error rather than letting the interrupt through."""
    import dagster as dg

    for record in instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_FAILURE):
        data = record.dagster_event.step_failure_data if record.dagster_event else None
        error = data.error if data else None
        while error is not None:
            if error.cls_name == _INTERRUPTED:
                return True
            error = error.cause
    return False


def report_failure(instance, job: str, run_id: str) -> None:
    """What failed, in one line at the end of the step log, and to the alert webhook if one is
    set: Dagster's failure sensor watches the runs launched through the code location, not one
    run in this process."""
    from orchestration.alerts import deliver
    from orchestration.sensors import alert_for_run

    alert = alert_for_run(instance, job, run_id, "")
    print(alert.text(), file=sys.stderr)
    deliver(alert)


def print_summary(settings: Settings) -> None:
    import duckdb

    con = duckdb.connect(str(settings.serve_path), read_only=True)
    try:
        customers = con.execute("select count(*) from customers").fetchone()[0]
        orders = con.execute("select count(*) from orders where is_purchase").fetchone()[0]
        # kpi_daily's revenue is net of refunds (dbt_project/macros/orders.sql says which rows are).
        revenue = con.execute("select coalesce(sum(revenue), 0) from kpi_daily").fetchone()[0]
        segments = con.execute(
            "select segment, count(*) * 1.0 / sum(count(*)) over () as share from customer_rfm group by 1 order by 2 desc"
        ).fetchall()
        scored, high_risk, clv, clv_days = con.execute(
            "select count(*), avg(case when risk_band = 'high' then 1.0 else 0 end), avg(predicted_clv), "
            "max(clv_horizon_days) from customer_scores"
        ).fetchone()
    finally:
        con.close()
    model = json.loads((settings.model_dir / "churn_model.json").read_text())
    print("\n=== Customer data platform: run summary ===")
    print(f"customers unified : {customers:,}")
    print(f"orders (purchases): {orders:,}  revenue less refunds {float(revenue):,.2f}")
    print("RFM segments      : " + (", ".join(f"{s} {share:.1%}" for s, share in segments) or "none: nobody has bought yet"))
    if "metrics" in model:
        m = model["metrics"][model["champion"]]
        print(
            f"churn model       : {model['champion']} (horizon {model['horizon_days']} d) — backtest AUC {m['auc']:.3f}, "
            f"PR-AUC {m['pr_auc']:.3f}, Brier {m['brier']:.3f}, top-decile lift {m['top_decile_lift']:.2f}"
        )
    else:
        print(f"churn model       : {model['champion']} — {model['reason']}")
    if scored:
        clv_text = f"{clv:,.2f}" if clv is not None else "n/a (no estimate)"
        print(f"scored customers  : {scored:,}  high churn risk {high_risk:.1%}  mean {clv_days}-day CLV {clv_text}")
    else:
        print("scored customers  : none: too little purchase history to fit the churn and lifetime-value models "
              "(the run's warning says what is missing)")
    print(f"quarantined rows  : {quarantine_summary(settings.warehouse_path)}")
    print(f"BI serve file     : {settings.serve_path}  (open read-only)")
    print(f"Dagster UI        : {ui_command(settings)}  →  http://127.0.0.1:3000")


def quarantine_summary(warehouse: Path, shown: int = 3) -> str:
    """How many delivered rows the warehouse keeps aside, and the most common channel and reason."""
    import duckdb

    from data_quality.rules import lit, q

    try:
        con = duckdb.connect(str(warehouse), read_only=True)
    except duckdb.Error:
        return "not counted: another process holds the warehouse"
    try:
        tables = [name for (name,) in con.execute(
            "select table_name from information_schema.tables where table_schema = 'quarantine' "
            "and table_catalog = current_database() order by 1").fetchall()]
        counts = con.execute(
            " union all ".join(f"select {lit(t)} as channel, reason, count(*) as n from quarantine.{q(t)} "
                               "group by reason" for t in tables) + " order by n desc, channel, reason"
        ).fetchall() if tables else []
    finally:
        con.close()
    total = sum(n for _, _, n in counts)
    if not total:
        return "none"
    top = ", ".join(f"{channel}: {reason} {n:,}" for channel, reason, n in counts[:shown])
    hidden = len(counts) - shown
    more = f", and {hidden} more reason{'s' if hidden > 1 else ''}" if hidden > 0 else ""
    return f"{total:,} ({top}{more}); each in quarantine.<channel> with its reason"


def ui_command(settings: Settings) -> str:
    """`make ui`, with the settings this run used where they differ from make's, so the UI shows
    this run's instance, warehouse and days (an orders run keeps its own under data/byo)."""
    import shlex

    data_dir = PROJECT_ROOT / "data"
    differing = {"CDP_DATA_DIR": (str(settings.data_dir), str(data_dir)),
                 # make derives it from CDP_DATA_DIR.
                 "DAGSTER_HOME": (os.environ.get("DAGSTER_HOME", ""), str(settings.data_dir / "dagster_home")),
                 # Paths set apart from the data folder (e.g. your own landing folder).
                 **{env: (str(getattr(settings, name)), str(default_path(settings.data_dir, name)))
                    for name, (env, _) in PATH_SETTINGS.items()}}
    if settings.start_date.isoformat() < DEFAULT_START_DATE:  # later days are among make's partitions anyway
        differing["CDP_START_DATE"] = (settings.start_date.isoformat(), DEFAULT_START_DATE)
    return " ".join([f"{name}={shlex.quote(used)}" for name, (used, default) in differing.items()
                     if used and used != default] + ["make ui"])


def cmd_run_orders(args: argparse.Namespace) -> int:
    """Bring your own orders: map the file onto the orders channel and run everything downstream."""
    import duckdb

    # Nothing here may import the partitions before CDP_START_DATE is set below.
    from orchestration.byo import ORDERS_CHANNEL, OrdersFileError, parse_column_map, prepare
    from orchestration.dbt_project import prepare_manifest
    from orchestration.sources.catalog import load_catalog
    from orchestration.sources.errors import SourceError
    from orchestration.sources.landing import ensure_tables
    from data_quality.rules import earliest_timestamp

    if not args.as_of:
        print("--orders needs --as-of YYYY-MM-DD (the day the scores describe)", file=sys.stderr)
        return 2
    demo_only = [flag for name, flag in DEMO_OPTIONS.items() if getattr(args, name) is not None]
    demo_only += ["--skip-generate"] if args.skip_generate else []
    if demo_only:
        print(f"{', '.join(demo_only)} shape the demo data; an orders run takes its days from the file and "
              "--as-of: leave them out", file=sys.stderr)
        return 2
    error = unfinished_day_error(args.as_of, "--as-of")
    if error:
        print(error, file=sys.stderr)
        return 2
    if args.since and args.since > args.as_of:
        print(f"--since {args.since} is after --as-of {args.as_of}", file=sys.stderr)
        return 2
    os.environ.setdefault("CDP_DATA_DIR", str(PROJECT_ROOT / "data" / "byo"))
    settings = Settings.from_env()
    own_landing = default_path(settings.data_dir, "landing_dir")
    if settings.landing_dir != own_landing:
        # The run replaces the orders channel's files in its landing folder: never a folder of your exports.
        print(f"--orders writes its own daily files under {own_landing}, and CDP_LANDING_DIR is "
              f"{settings.landing_dir}: unset it for an orders run (set CDP_DATA_DIR to choose the folder)",
              file=sys.stderr)
        return 2
    catalog = load_catalog()
    channel = catalog[ORDERS_CHANNEL]
    # The daily files are written beside the last import's and replace them only once the file
    # could be read: a mistyped path leaves the last import for the UI to re-run.
    folder = Path(channel.path).parent
    settings.landing_dir.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".orders-", dir=settings.landing_dir))
    try:
        prepared = prepare(Path(args.orders).resolve(), args.as_of, scratch,
                           channel, parse_column_map(args.columns), since=args.since,
                           encoding=args.encoding or "utf-8")
        shutil.rmtree(settings.landing_dir / folder, ignore_errors=True)
        (settings.landing_dir / folder).parent.mkdir(parents=True, exist_ok=True)
        os.replace(scratch / folder, settings.landing_dir / folder)
    except (OrdersFileError, ValueError) as error:
        print(f"cannot use the orders file: {error}", file=sys.stderr)
        return 2
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"{prepared.rows:,} orders from {prepared.first_day} to {prepared.last_day} written as "
          f"{prepared.files_written} daily files in {settings.landing_dir}")
    warning = earlier_data_warning(settings.warehouse_path, prepared.first_day,
                                   f"Remove {settings.data_dir} (or set another CDP_DATA_DIR) to start afresh")
    if warning:
        print(warning, file=sys.stderr)
    if prepared.before_since:
        print(f"{prepared.before_since:,} orders before --since {args.since} are kept out of this run")
    if prepared.after_as_of:
        print(f"{prepared.after_as_of:,} orders after --as-of {args.as_of} are kept out of this run")
    if prepared.unparseable_times:
        print(f"{prepared.unparseable_times:,} orders have a time that cannot be read, or one before "
              f"{earliest_timestamp()} (a stand-in for no date): ingest quarantines them with the reason")
    if prepared.unparseable_amounts:
        print(f"{prepared.unparseable_amounts:,} orders have an amount that is not a number: ingest quarantines them "
              "with the reason")
    if prepared.without_customer:
        print(f"{prepared.without_customer:,} orders have no customer id: they count in the orders table, "
              "but in no customer's history or scores")
    if prepared.placeholder_customer:
        shown = f" ({', '.join(repr(v) for v in prepared.placeholder_ids)})" if prepared.placeholder_ids else ""
        print(f"{prepared.placeholder_customer:,} orders have a customer id{shown} the identity rules take for a "
              "placeholder (vars.identity.blocklist and blocklist_patterns in dbt_project/dbt_project.yml): they count in the "
              "orders table, but in no customer's history or scores; remove the value there if it is a real customer")
    if prepared.contact_customer:
        print(f"{prepared.contact_customer:,} orders have a customer id that is an email address or a phone number: "
              "it is matched as one and published only as a keyed hash and masked (customers.email_key, phone_key), "
              "not as member_id")
    os.environ["CDP_START_DATE"] = prepared.first_day.isoformat()
    settings = Settings.from_env()
    _prepare_instance()
    prepare_manifest(force=True)
    # Channels the user has no data for exist as empty tables: their models are built, empty.
    settings.warehouse_path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(settings.warehouse_path))
    try:
        for other in catalog.values():
            ensure_tables(con, other)
    except SourceError as error:
        print(f"cannot use the warehouse {settings.warehouse_path}: {error}", file=sys.stderr)
        return 2
    finally:
        con.close()
    ops = {
        "ml__churn_model": {"config": {"horizon_days": args.churn_horizon_days or ChurnConfig.horizon_days}},
        "ml__customer_scores": {"config": {"clv_horizon_days": args.clv_horizon_days or ClvConfig.horizon_days}},
    }
    ok = materialize_range(prepared.first_day.isoformat(), args.as_of.isoformat(), job="orders_only", ops=ops,
                           as_of=args.as_of.isoformat())
    if not ok:
        print("the run failed: details in the log above, or `make ui` → Runs", file=sys.stderr)
        return 1
    print_summary(settings)
    print("customer_scores.member_id is your customer id: join the scores back on it"
          + (" (where it is not an email address or phone number)" if prepared.contact_customer else ""))
    return 0


def earliest_loaded_day(warehouse: Path) -> date | None:
    """The first day the warehouse holds loads of, or None: no warehouse, nothing loaded yet, or
    another process holds the file (e.g. the UI; the run itself will say so)."""
    import duckdb

    if not warehouse.exists():
        return None
    try:
        con = duckdb.connect(str(warehouse), read_only=True)
    except duckdb.Error:
        return None
    try:
        return con.execute("select min(partition_start) from audit.load_ledger").fetchone()[0]
    except duckdb.CatalogException:
        return None
    finally:
        con.close()


def earlier_data_warning(warehouse: Path, first_day: date,
                         afresh: str = "`make clean` (or another CDP_DATA_DIR) starts afresh") -> str | None:
    """A warning when the warehouse holds loads from before the run's first day: an earlier run
    over a longer range, whose days this run does not reload, so its results would mix both."""
    earliest = earliest_loaded_day(warehouse)
    if earliest is None or earliest >= first_day:
        return None
    return (f"warning: the warehouse {warehouse} holds data from {earliest} on, before this run's first day "
            f"{first_day}; the results will mix both runs. {afresh}.")


def cmd_run(args: argparse.Namespace) -> int:
    from orchestration.dbt_project import prepare_manifest

    if args.orders:
        return cmd_run_orders(args)
    if args.as_of or args.since or args.columns or args.encoding:
        print("--as-of, --since, --columns and --encoding describe an orders file: add --orders FILE, or leave "
              "them out for demo data", file=sys.stderr)
        return 2
    if args.churn_horizon_days or args.clv_horizon_days:
        # A demo or scheduled run takes its horizons from ml/config.py (or the assets' run config in the UI).
        print("--churn-horizon-days and --clv-horizon-days apply to an orders run: add --orders FILE, or set the "
              "horizons in ml/config.py (or as run config of ml/churn_model and ml/customer_scores in the UI)",
              file=sys.stderr)
        return 2
    config = _demo_config(args)
    error = unfinished_day_error(config.end_date, "--end-date")
    if error:
        print(error, file=sys.stderr)
        return 2
    first_day = config.end_date - timedelta(days=config.days - 1)
    # Partitions must cover the run's first day; set before the definitions are imported. On
    # delivered files they start where the warehouse's loads do: a run over the last days then
    # judges its first day's volume against the days before it, and reads the CRM and helpdesk
    # since that day rather than from their beginning.
    if args.skip_generate and "CDP_START_DATE" not in os.environ:
        earliest = earliest_loaded_day(Settings.from_env().warehouse_path)
        if earliest is not None and earliest < first_day:
            os.environ["CDP_START_DATE"] = earliest.isoformat()
    os.environ.setdefault("CDP_START_DATE", first_day.isoformat())
    settings = Settings.from_env()
    if settings.start_date > first_day:
        print(f"CDP_START_DATE={settings.start_date} is after the demo's first day {first_day}", file=sys.stderr)
        return 2
    own_landing = default_path(settings.data_dir, "landing_dir")
    if not args.skip_generate and settings.landing_dir != own_landing:
        print(f"the demo data goes to {own_landing}, but CDP_LANDING_DIR is {settings.landing_dir}: "
              "unset it, or add --skip-generate to run on the files there", file=sys.stderr)
        return 2
    unset = unset_source_systems(settings) if args.skip_generate else []
    if unset:
        print(f"{settings.data_dir} has no demo source systems to stand in for yours: set {' and '.join(unset)}, or "
              "disable the channels you do not have in the catalog (README: \"Pointing it at your own data\")",
              file=sys.stderr)
        return 2
    tokens = missing_api_tokens() if args.skip_generate else []
    if tokens:
        print(f"your own API needs its token: set {' and '.join(tokens)}", file=sys.stderr)
        return 2
    # New demo data over a warehouse holding an earlier demo's days would mix two datasets; on
    # delivered files, days loaded before this run's are the history a daily run builds on.
    warning = None if args.skip_generate else earlier_data_warning(settings.warehouse_path, first_day)
    if warning:
        print(warning, file=sys.stderr)
    _prepare_instance()
    prepare_manifest(force=True)  # the manifest records the warehouse file; rebuild it for this one
    if not args.skip_generate:
        summary = generate(settings.data_dir, config, progress=True)
        print(f"demo data: {summary.people:,} people, {summary.files_written:,} files in {summary.landing_dir}")
    print(f"materialising every asset for {first_day} .. {config.end_date}")
    # Demo data is read from the demo's systems; a run on delivered files from the systems the
    # environment points at, the demo's standing in for the others.
    with run_source_systems(settings, own=args.skip_generate) as systems:
        print("; ".join(systems))
        ok = materialize_range(first_day.isoformat(), config.end_date.isoformat())
    if not ok:
        print("the run failed: details in the log above, or `make ui` → Runs", file=sys.stderr)
        return 1
    print_summary(settings)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cdp", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("prepare", help="build the dbt manifest and Dagster instance settings").set_defaults(func=cmd_prepare)
    bench = sub.add_parser("bench", help="time the pipeline per stage at a chosen size (full build + one day)")
    bench.add_argument("--size", choices=["small", "medium", "large"], default="small")
    bench.add_argument("--ingest-only", action="store_true", help="only time ingestion, per channel")
    bench.add_argument("--publish-only", action="store_true",
                       help="only time the serve file's publish of customer_history, against the length of history")
    bench.add_argument("--days", type=_history_days, default=None,
                       help="days of history instead of the size's 365 (the pipeline benchmark only)")
    bench.add_argument("--out", type=Path, default=None, help="also write the figures as JSON here")
    bench.add_argument("--keep", type=Path, default=None,
                       help="run the pipeline benchmark in this empty folder and leave it (warehouse, landing files) "
                            "to profile queries on")
    bench.set_defaults(func=cmd_bench)
    ui = sub.add_parser("ui", help="the Dagster UI on 127.0.0.1 (with the demo source systems)")
    ui.add_argument("--port", type=_port, default=3000)
    ui.set_defaults(func=cmd_ui)
    defaults = DemoConfig()
    for name, func, text in (("generate", cmd_generate, "write demo data"), ("run", cmd_run, "demo data + full pipeline")):
        p = sub.add_parser(name, help=text)
        p.add_argument("--customers", type=_at_least_one, help=f"people in the demo (default {defaults.customers:,})")
        p.add_argument("--days", type=_at_least_one, help=f"days of history (default {defaults.days})")
        p.add_argument("--end-date", type=_iso_date, help=f"the last day, YYYY-MM-DD (default {defaults.end_date})")
        p.add_argument("--seed", type=int, help=f"the demo's random seed (default {defaults.seed})")
        if name == "run":
            p.add_argument("--skip-generate", action="store_true", help="use the landing folder as it is")
            p.add_argument("--orders", help="your own orders export (CSV or Parquet) instead of demo data")
            p.add_argument("--as-of", type=_iso_date, help="with --orders: the day the scores describe (YYYY-MM-DD)")
            p.add_argument("--since", type=_iso_date, help="with --orders: the first day to include (YYYY-MM-DD); "
                           f"needed for more than {MAX_HISTORY_YEARS} years of history")
            p.add_argument("--encoding", choices=sorted(CODECS),
                           help="with --orders: the CSV's text encoding (default utf-8; gbk for many Chinese exports)")
            p.add_argument("--columns", help="with --orders: FIELD=COLUMN,... for customer_id, ordered_at, amount, "
                           "order_id (defaults: customer_id, order_time, amount; no order id)")
            p.add_argument("--churn-horizon-days", type=_at_least_one,
                           help=f"with --orders: churn = no purchase within this many days (default {ChurnConfig.horizon_days})")
            p.add_argument("--clv-horizon-days", type=_at_least_one,
                           help=f"with --orders: predicted purchases, spend and CLV over this many days "
                           f"(default {ClvConfig.horizon_days})")
        p.set_defaults(func=func)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (SettingsError, CatalogError) as error:
        print(f"cdp: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("cdp: interrupted; a run stopped part-way is finished by running it again", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
