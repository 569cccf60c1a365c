"""`cdp`: the project's command line (what `make run` and `make ui` call).

  cdp prepare             build the dbt manifest and the Dagster instance settings
  cdp bench [--size S]    ingestion speed per channel at a chosen demo size
  cdp ui                  the Dagster UI on 127.0.0.1, with the demo CRM database and helpdesk API
  cdp generate [...]      write demo data into the landing folder
  cdp run [...]           demo data → every asset (ingest → dbt → ML → checks → publish) → summary
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from datetime import date, timedelta
from pathlib import Path

from orchestration.demo import crm_url, demo_source_systems, has_demo_systems
from orchestration.settings import PROJECT_ROOT, Settings
from orchestration.sources.demo_data import DemoConfig, generate


def _prepare_instance() -> Path:
    home = Path(os.environ.setdefault("DAGSTER_HOME", str(Settings.from_env().data_dir / "dagster_home")))
    home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(PROJECT_ROOT / "orchestration" / "dagster.yaml", home / "dagster.yaml")
    return home


def cmd_prepare(_: argparse.Namespace) -> int:
    from orchestration.dbt_project import prepare_manifest

    home = _prepare_instance()
    prepare_manifest(force=True)
    print(f"dbt manifest built; Dagster instance at {home}")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from orchestration.benchmark import bench_ingest

    bench_ingest(args.size, args.out)
    return 0


def cmd_ui(args: argparse.Namespace) -> int:
    """`dagster dev` on 127.0.0.1, with the demo's CRM database and helpdesk API up when the
    demo data exists (runs launched from the UI read them)."""
    import subprocess

    from orchestration.dbt_project import prepare_manifest

    settings = Settings.from_env()
    _prepare_instance()
    prepare_manifest(force=True)
    command = [str(Path(sys.executable).with_name("dagster")), "dev", "-w", str(PROJECT_ROOT / "workspace.yaml"),
               "-h", "127.0.0.1", "-p", str(args.port)]
    if not has_demo_systems(settings):
        return subprocess.call(command, cwd=PROJECT_ROOT)
    with demo_source_systems(settings) as api_url:
        print(f"demo helpdesk API at {api_url}; Dagster UI at http://127.0.0.1:{args.port}")
        try:
            return subprocess.call(command, cwd=PROJECT_ROOT)
        except KeyboardInterrupt:
            return 0


def _demo_config(args: argparse.Namespace) -> DemoConfig:
    return DemoConfig(
        customers=args.customers, days=args.days, end_date=date.fromisoformat(args.end_date), seed=args.seed
    )


def cmd_generate(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    summary = generate(settings.data_dir, _demo_config(args), progress=True)
    print(f"{summary.files_written} files for {summary.people} people in {summary.landing_dir}")
    return 0


def materialize_range(start: str, end: str, instance=None) -> bool:
    """Run the daily job over [start, end] as one run (the ingest assets read all days at once),
    recorded in the Dagster instance of $DAGSTER_HOME unless another is given."""
    import dagster as dg

    from orchestration.definitions import defs

    instance = instance or dg.DagsterInstance.get()
    result = defs.resolve_job_def("daily_refresh").execute_in_process(
        instance=instance,
        tags={"dagster/asset_partition_range_start": start, "dagster/asset_partition_range_end": end},
        # Step-level progress on the terminal; every event is still in the run's log in the UI.
        run_config={"loggers": {"console": {"config": {"log_level": "INFO"}}}},
        raise_on_error=False,
    )
    return result.success


def print_summary(settings: Settings) -> None:
    import duckdb

    con = duckdb.connect(str(settings.serve_path), read_only=True)
    try:
        customers = con.execute("select count(*) from customers").fetchone()[0]
        orders, revenue = con.execute("select count(*), coalesce(sum(amount), 0) from orders where is_purchase").fetchone()
        segments = con.execute(
            "select segment, count(*) * 1.0 / sum(count(*)) over () as share from customer_rfm group by 1 order by 2 desc"
        ).fetchall()
        scored, high_risk, clv = con.execute(
            "select count(*), avg(case when risk_band = 'high' then 1.0 else 0 end), avg(predicted_clv) from customer_scores"
        ).fetchone()
    finally:
        con.close()
    model = json.loads((settings.model_dir / "churn_model.json").read_text())
    print("\n=== Customer data platform: run summary ===")
    print(f"customers unified : {customers:,}")
    print(f"orders (purchases): {orders:,}  revenue {float(revenue):,.2f}")
    print("RFM segments      : " + ", ".join(f"{s} {share:.1%}" for s, share in segments))
    if "metrics" in model:
        m = model["metrics"][model["champion"]]
        print(
            f"churn model       : {model['champion']} (horizon {model['horizon_days']} d) — backtest AUC {m['auc']:.3f}, "
            f"PR-AUC {m['pr_auc']:.3f}, Brier {m['brier']:.3f}, top-decile lift {m['top_decile_lift']:.2f}"
        )
    else:
        print(f"churn model       : {model['champion']} — {model['reason']}")
    print(f"scored customers  : {scored:,}  high churn risk {high_risk:.1%}  mean 1-year CLV {clv:,.2f}")
    print(f"BI serve file     : {settings.serve_path}  (open read-only)")
    print("Dagster UI        : make ui  →  http://127.0.0.1:3000")


def cmd_run(args: argparse.Namespace) -> int:
    from orchestration.dbt_project import prepare_manifest

    config = _demo_config(args)
    first_day = config.end_date - timedelta(days=config.days - 1)
    # Partitions must cover the demo's first day; set before the definitions are imported.
    os.environ.setdefault("CDP_START_DATE", first_day.isoformat())
    settings = Settings.from_env()
    if settings.start_date > first_day:
        print(f"CDP_START_DATE={settings.start_date} is after the demo's first day {first_day}", file=sys.stderr)
        return 2
    _prepare_instance()
    prepare_manifest(force=True)  # the manifest records the warehouse file; rebuild it for this one
    if not args.skip_generate:
        summary = generate(settings.data_dir, config, progress=True)
        print(f"demo data: {summary.people:,} people, {summary.files_written:,} files in {summary.landing_dir}")
    print(f"materialising every asset for {first_day} .. {config.end_date}")
    with demo_source_systems(settings) as api_url:
        print(f"demo CRM database: {crm_url(settings)}; demo helpdesk API: {api_url}")
        ok = materialize_range(first_day.isoformat(), config.end_date.isoformat())
    if not ok:
        print("the run failed: see the log above, or `make ui` → Runs", file=sys.stderr)
        return 1
    print_summary(settings)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cdp", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("prepare", help="build the dbt manifest and Dagster instance settings").set_defaults(func=cmd_prepare)
    bench = sub.add_parser("bench", help="time ingestion at a chosen size (rows per second per channel)")
    bench.add_argument("--size", choices=["small", "medium", "large"], default="small")
    bench.add_argument("--out", type=Path, default=None, help="also write the figures as JSON here")
    bench.set_defaults(func=cmd_bench)
    ui = sub.add_parser("ui", help="the Dagster UI on 127.0.0.1 (with the demo source systems)")
    ui.add_argument("--port", type=int, default=3000)
    ui.set_defaults(func=cmd_ui)
    defaults = DemoConfig()
    for name, func, text in (("generate", cmd_generate, "write demo data"), ("run", cmd_run, "demo data + full pipeline")):
        p = sub.add_parser(name, help=text)
        p.add_argument("--customers", type=int, default=defaults.customers)
        p.add_argument("--days", type=int, default=defaults.days)
        p.add_argument("--end-date", default=defaults.end_date.isoformat())
        p.add_argument("--seed", type=int, default=defaults.seed)
        if name == "run":
            p.add_argument("--skip-generate", action="store_true", help="use the landing folder as it is")
        p.set_defaults(func=func)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
