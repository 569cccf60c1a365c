"""`cdp bench`: generate demo data at a chosen size and time each ingest stage; prints a table
and writes the same figures as JSON. Numbers, not assertions: compare them within one run."""

from __future__ import annotations

import json
import resource
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import duckdb

from orchestration.partitions import days_in_range
from orchestration.sources.catalog import load_catalog
from orchestration.sources.demo_data import DemoConfig, generate
from orchestration.sources.files import load_partition

SIZES = {
    "small": DemoConfig(customers=10_000, days=365),
    "medium": DemoConfig(customers=100_000, days=365),
    "large": DemoConfig(customers=1_000_000, days=365),
}


def bench_ingest(size: str, out: Path | None = None) -> dict:
    config = SIZES[size]
    with tempfile.TemporaryDirectory(prefix=f"cdp-bench-{size}-") as tmp:
        root = Path(tmp)
        started = time.monotonic()
        generate(root, config, progress=True, record_truth=False)
        generated_s = time.monotonic() - started
        days = days_in_range((config.end_date - timedelta(days=config.days - 1)).isoformat(), config.end_date.isoformat())
        con = duckdb.connect(str(root / "warehouse.duckdb"))
        stages = []
        for channel in (c for c in load_catalog().values() if c.connector == "files"):
            started = time.monotonic()
            result = load_partition(con, channel, root / "landing", days, f"bench-{channel.name}")
            seconds = time.monotonic() - started
            stages.append({"stage": f"ingest {channel.name} ({channel.format}, {channel.encoding})",
                           "seconds": round(seconds, 2), "rows": result.received,
                           "rows_per_s": round(result.received / seconds) if seconds else None})
        con.close()
    report = {
        "size": size, "customers": config.customers, "days": config.days,
        "generate_seconds": round(generated_s, 1), "stages": stages,
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }
    width = max(len(s["stage"]) for s in stages)
    print(f"\nbenchmark '{size}': {config.customers:,} customers × {config.days} days (generated in {generated_s:.1f} s)")
    print(f"{'stage':<{width}}  {'seconds':>8}  {'rows':>12}  {'rows/s':>10}")
    for s in stages:
        print(f"{s['stage']:<{width}}  {s['seconds']:>8.2f}  {s['rows']:>12,}  {s['rows_per_s'] or 0:>10,}")
    print(f"peak memory (this process): {report['peak_rss_mib']} MiB")
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2))
        print(f"written to {out}")
    return report
