"""`make bench` runs end to end. Its sections import the product's modules and write raw SQL, so a move or a new
column breaks it without any other test noticing: the detection section raised AttributeError after the house
move, and data generation failed on issue 13's NOT NULL columns. This runs the whole suite at the smallest sizes
(into no results file) and checks that every section produced its figures. It asserts no timing."""

import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from django.conf import settings

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.postgres


def test_the_benchmark_suite_runs_every_section_at_the_smallest_size(postgres, tmp_path):
    db = settings.DATABASES["default"]
    server = f"postgres://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}"
    env = {
        **os.environ,
        "BENCH_PG": server,
        "BENCH_MAIN_DB": f"lineup_bench_smoke_{os.getpid()}",
        "BENCH_SCALE": "0.001",
        "BENCH_RUNS": "1",
        "BENCH_STOCK_RUNS": "1",
        "BENCH_BASELINE_ROWS": "20",
        "BENCH_SYNC_RECORDS": "300",
        "BENCH_DRAIN_RECORDS": "600",
        "BENCH_DRAIN_TENANTS": "3",
        "BENCH_DRAIN_WORKERS": "1",
        "BENCH_DRAIN_CONCURRENCY": "2",
        "BENCH_DRAIN_DB": f"lineup_bench_drain_smoke_{os.getpid()}",
        # The dashboard section grows to 10M sync logs whatever the scale, and the quota section runs 40 s.
        "BENCH_SKIP": "dashboard,quota",
        "BENCH_RESULTS": "-",
        "DJANGO_SETTINGS_MODULE": "lineup_ops.settings",
    }
    env.pop("DATABASE_URL", None)
    try:
        run = subprocess.run(
            [sys.executable, "-m", "bench"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
        )
    finally:
        with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
            for name in (env["BENCH_MAIN_DB"], env["BENCH_DRAIN_DB"]):
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    assert run.returncode == 0, run.stderr[-3000:]
    assert "Traceback" not in run.stderr, run.stderr[-3000:]
    assert "not available" not in run.stdout and "failed: " not in run.stdout, run.stdout
    for figure in (
        "sync-log changelist, unfiltered",
        "detection pass",
        "retry failed sync logs",
        "pause sync",
    ):
        assert figure in run.stdout, (figure, run.stdout)
