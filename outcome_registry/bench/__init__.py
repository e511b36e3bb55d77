"""`make bench`: time the registry pipeline against a hand-written DuckDB baseline on the same batches.

- :mod:`.harness`: data (both batch shapes), the timed pipeline in child processes, memory, one size;
- :mod:`.comparison`: ``bench/baseline.sql`` and the check of the published warehouse against it;
- :mod:`.latency`: the dashboard's reads through its query layer, per role;
- :mod:`.report`: targets (PASS / MISS), growth exponents, the markdown report and the console table.

``python -m outcome_registry.bench --sizes 10k,100k,1m [--include-10m] [--shapes small,large]``; the
results go to ``bench/results`` (bench/README.md explains every figure). ``--merge a.json b.json`` makes one
report of several runs (e.g. the 10M size run beside the others).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from outcome_registry.bench.comparison import (
    ALL_COHORT,
    BASELINE_SQL,
    COURSE_COLUMNS,
    COURSE_KEY,
    MONTHLY_FIGURES,
    MONTHLY_KEY,
    compare_suppressed,
    compare_tables,
    compare_with_baseline,
    run_baseline,
)
from outcome_registry.bench.harness import (
    DEFAULT_OUT,
    SHAPES,
    TASKS,
    merge_per_clinic,
    merge_reports,
    run_bench,
    worker,
)
from outcome_registry.bench.latency import dashboard_latency
from outcome_registry.bench.report import TARGETS, evaluate_targets, growth_exponents, render_markdown
from outcome_registry.errors import RegistryError
from outcome_registry.paths import PROJECT_DIR

__all__ = [
    "ALL_COHORT",
    "BASELINE_SQL",
    "COURSE_COLUMNS",
    "COURSE_KEY",
    "DEFAULT_OUT",
    "MONTHLY_FIGURES",
    "MONTHLY_KEY",
    "PROJECT_DIR",
    "SHAPES",
    "TARGETS",
    "compare_suppressed",
    "compare_tables",
    "compare_with_baseline",
    "dashboard_latency",
    "evaluate_targets",
    "growth_exponents",
    "main",
    "merge_per_clinic",
    "merge_reports",
    "parse_names",
    "parse_sizes",
    "render_markdown",
    "run_baseline",
    "run_bench",
]


def parse_names(text: str) -> tuple[str, ...]:
    """'small, large' -> ('small', 'large'): a comma-separated option's names."""
    return tuple(part.strip() for part in text.split(",") if part.strip())


def parse_sizes(text: str) -> list[int]:
    """'10k,100k,1m' -> [10000, 100000, 1000000]."""
    out = []
    for part in text.split(","):
        part = part.strip().lower().replace("_", "")
        mult = 1
        if part.endswith("k"):
            part, mult = part[:-1], 1_000
        elif part.endswith("m"):
            part, mult = part[:-1], 1_000_000
        try:
            out.append(int(float(part) * mult))
        except ValueError as exc:
            raise RegistryError(f"'{part}' is not a size: give sessions as e.g. 10000,100k,1m.") from exc
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m outcome_registry.bench", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--sizes", default="10000,100000,1000000", help="comma-separated sessions, e.g. 10k,1m"
    )
    parser.add_argument("--include-10m", action="store_true")
    parser.add_argument("--shapes", default="small,large", help=f"batch shapes: {', '.join(SHAPES)}")
    parser.add_argument(
        "--engines", default="duckdb", help="duckdb, or duckdb,spark for the Spark column (local Spark)"
    )
    parser.add_argument(
        "--spark-sizes",
        default="100k,1m",
        help="sizes that get the Spark column (with --engines duckdb,spark)",
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--workdir", type=Path, default=None, help="keep generated data here")
    parser.add_argument("--keep-homes", action="store_true", help="keep the registry homes in --workdir")
    parser.add_argument(
        "--merge", type=Path, nargs="+", metavar="JSON", help="merge finished runs' JSON reports into one"
    )
    parser.add_argument("--note", action="append", default=[], help="a note for the merged report")
    parser.add_argument("--worker", choices=sorted(TASKS), help=argparse.SUPPRESS)
    parser.add_argument("--args-json", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--result-json", type=Path, help=argparse.SUPPRESS)
    ns = parser.parse_args(argv)
    if ns.worker:
        return worker(ns.worker, ns.args_json, ns.result_json)
    if ns.merge:
        try:
            merge_reports(ns.merge, out_dir=ns.out, notes=ns.note)
        except RegistryError as exc:
            print(exc.message, file=sys.stderr)
            return exc.exit_code
        return 0
    try:
        run_bench(
            parse_sizes(ns.sizes),
            out_dir=ns.out,
            include_10m=ns.include_10m,
            seed=ns.seed,
            workdir=ns.workdir,
            shapes=parse_names(ns.shapes),
            keep_homes=ns.keep_homes,
            engines=parse_names(ns.engines),
            spark_sizes=tuple(parse_sizes(ns.spark_sizes)),
        )
    except RegistryError as exc:
        print(exc.message, file=sys.stderr)
        return exc.exit_code
    return 0
