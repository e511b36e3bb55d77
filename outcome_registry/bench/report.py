"""The benchmark report: targets (PASS / MISS), growth exponents, the markdown file and the console table."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

from outcome_registry.bench.latency import slowest_page_read

# (name, size it applies to, description, limit, how to read the value)
TARGETS: tuple[tuple[str, int, str, float], ...] = (
    ("pipeline_vs_baseline_1m", 1_000_000, "pipeline ≤ 3× baseline at 1M sessions", 3.0),
    ("pipeline_vs_baseline_10m", 10_000_000, "pipeline ≤ 1.5× baseline at 10M sessions", 1.5),
    ("incremental_1m", 1_000_000, "monthly increment ≤ 10 % of the full build at 1M", 0.10),
    ("peak_memory_1m", 1_000_000, "peak memory ≤ 4 GiB at 1M", 4.0),
    ("peak_memory_10m", 10_000_000, "peak memory ≤ 12 GiB at 10M", 12.0),
    ("dashboard_p95_10m", 10_000_000, "dashboard page reads p95 ≤ 250 ms at 10M", 250.0),
)
# Stages whose growth with size is reported (slope of log time over log size, 100k .. 10M).
GROWTH_STAGES = (
    ("ingest", "ingest_s"),
    ("dbt", "dbt_s"),
    ("closure", "closure_s"),
    ("validation", "validation_s"),
    ("publish", "publish_s"),
    ("pipeline", "pipeline_s"),
    ("increment", "incremental_s"),
    ("baseline", "baseline_s"),
)
GROWTH_FROM = 100_000


def target_value(name: str, row: dict[str, Any]) -> float | None:
    if name.startswith("pipeline_vs_baseline"):
        return (row.get("ratios") or {}).get("pipeline")
    if name.startswith("incremental"):
        return (row.get("ratios") or {}).get("incremental_vs_full")
    if name.startswith("dashboard"):
        return row.get("dashboard_p95_max_ms")
    return row.get("peak_rss_gib")


def evaluate_targets(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """PASS/MISS per target, shape and size; NO DATA when the run could not measure it (nothing published,
    or the "incremental" build was a full refresh); NOT RUN (with the largest size's figure as an
    indication) when that size was not benchmarked."""
    out = []
    for shape in sorted({r.get("shape", "small") for r in rows}):
        by_size = {r["size"]: r for r in rows if r.get("shape", "small") == shape and not r.get("error")}
        largest = by_size[max(by_size)] if by_size else None
        for name, size, text, limit in TARGETS:
            r = by_size.get(size)
            if r is not None:
                v = target_value(name, r)
                verdict = "NO DATA" if v is None else "MISS" if v > limit else "PASS"
                if name.startswith("incremental") and r.get("incr_full_refresh"):
                    verdict = "NO DATA"  # the pipeline rebuilt in full: not an incremental figure
                out.append(dict(target=name, shape=shape, description=text, value=v, limit=limit,
                                verdict=verdict, size=size))  # fmt: skip
            else:
                v = target_value(name, largest) if largest else None
                out.append(dict(target=name, shape=shape, description=text, value=v, limit=limit,
                                verdict="NOT RUN", size=largest["size"] if largest else None))  # fmt: skip
    return out


def growth_exponents(rows: list[dict[str, Any]]) -> dict[str, dict[str, float | None]]:
    """Per shape and stage, the least-squares slope of log(seconds) over log(sessions) for the sizes from
    100k up: 1 = linear, below 1 = fixed costs still dominate, above 1 = worse than linear."""
    out: dict[str, dict[str, float | None]] = {}
    for shape in sorted({r.get("shape", "small") for r in rows}):
        stages: dict[str, float | None] = {}
        for label, key in GROWTH_STAGES:
            points = [
                (math.log(r.get("n_sessions") or r["size"]), math.log(r[key]))
                for r in rows
                if r.get("shape", "small") == shape
                and not r.get("error")
                and r["size"] >= GROWTH_FROM
                and (r.get(key) or 0) > 0
            ]
            if len(points) < 2:
                stages[label] = None
                continue
            mx = sum(x for x, _ in points) / len(points)
            my = sum(y for _, y in points) / len(points)
            sxx = sum((x - mx) ** 2 for x, _ in points)
            stages[label] = sum((x - mx) * (y - my) for x, y in points) / sxx if sxx else None
        out[shape] = stages
    return out


def _fmt(v: Any, unit: str = "") -> str:
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:,.2f}{unit}" if abs(v) < 100 else f"{v:,.0f}{unit}"
    return f"{v:,}{unit}" if isinstance(v, int) else str(v)


def _mismatch_total(row: dict[str, Any], key: str = "mismatches") -> str:
    mm = row.get(key)
    if not mm:
        return "–"
    names = {"fct_courses": "courses", "mart_monthly_outcomes": "monthly"}
    return " ".join(f"{names.get(t, t)}={_fmt(m.get('total'))}" for t, m in mm.items())


def _reruns(invocations: list[dict[str, Any]] | None) -> str:
    """The closure's dbt re-runs (every invocation after the main build): how many, their seconds."""
    if not invocations:
        return "–"
    rest = invocations[1:]
    return f"{len(rest)}, {sum(i['seconds'] for i in rest):.1f}"


def _ratio_of(name: str) -> Callable[[dict[str, Any]], str]:
    return lambda r: _fmt((r.get("ratios") or {}).get(name), "×")


def _phase(name: str) -> Callable[[dict[str, Any]], str]:
    return lambda r: _fmt((r.get("dbt_phases") or {}).get(name))


# Rows of the summary table (one column per shape and size).
METRICS: tuple[tuple[str, Callable[[dict[str, Any]], str]], ...] = (
    ("sessions (full load)", lambda r: _fmt(r.get("n_sessions"))),
    ("batches (full load)", lambda r: _fmt(r.get("n_batches"))),
    ("generate s (apart)", lambda r: _fmt(r.get("generate_s"))),
    ("ingest s", lambda r: _fmt(r.get("ingest_s"))),
    ("dbt build s", lambda r: _fmt(r.get("dbt_s"))),
    (
        "  dbt start-up / parse / prepare / run s",
        lambda r: " / ".join(_phase(p)(r) for p in ("startup", "parse", "prepare", "run")),
    ),  # fmt: skip
    ("  dbt nodes (count, sum of node s)", lambda r: _fmt((r.get("dbt_nodes") or {}).get("summary"))),
    ("closure s (algebraic check)", lambda r: _fmt(r.get("closure_s"))),
    ("  of which dbt re-runs (n, s)", lambda r: _reruns(r.get("dbt_invocations"))),
    ("validation s", lambda r: _fmt(r.get("validation_s"))),
    ("publish s", lambda r: _fmt(r.get("publish_s"))),
    ("pipeline total s", lambda r: _fmt(r.get("pipeline_s"))),
    ("build status", lambda r: _fmt(r.get("build_status"))),
    ("baseline s", lambda r: _fmt(r.get("baseline_s"))),
    ("ingest / baseline", _ratio_of("ingest")),
    ("dbt / baseline", _ratio_of("dbt")),
    ("validation / baseline", _ratio_of("validation")),
    ("publish / baseline", _ratio_of("publish")),
    ("pipeline / baseline", _ratio_of("pipeline")),
    ("increment sessions", lambda r: _fmt(r.get("incr_n_sessions"))),
    ("increment s (ingest + build)", lambda r: _fmt(r.get("incremental_s"))),
    (
        "  ingest / dbt / closure / validation / publish s",
        lambda r: " / ".join(
            _fmt(r.get(k))
            for k in ("incr_ingest_s", "incr_dbt_s", "incr_closure_s", "incr_validation_s", "incr_publish_s")
        ),
    ),  # fmt: skip
    (
        "  incr. dbt start-up / parse / prepare / run s",
        lambda r: " / ".join(
            _fmt((r.get("incr_dbt_phases") or {}).get(p)) for p in ("startup", "parse", "prepare", "run")
        ),
    ),
    ("  incr. closure's dbt re-runs (n, s)", lambda r: _reruns(r.get("incr_dbt_invocations"))),
    ("  patients recomputed", lambda r: _fmt(r.get("incr_changed_patients"))),
    ("increment was a full refresh", lambda r: _fmt(r.get("incr_full_refresh"))),
    ("increment / full", lambda r: _fmt((r.get("ratios") or {}).get("incremental_vs_full"))),
    ("dashboard page reads p95 ms (slowest)", lambda r: _fmt(r.get("dashboard_p95_max_ms"))),
    ("  slowest page read", lambda r: _fmt(r.get("dashboard_slowest"))),
    ("analyst SQL box p95 ms", lambda r: _fmt(r.get("sql_box_p95_ms"))),
    ("peak memory GiB (pipeline, sampled)", lambda r: _fmt(r.get("peak_rss_sampled_gib"))),
    (
        "  worker max / dbt max GiB",
        lambda r: f"{_fmt(r.get('pipeline_rss_self_gib'))} / {_fmt(r.get('pipeline_rss_children_gib'))}",
    ),  # fmt: skip
    ("peak memory GiB (baseline)", lambda r: _fmt(r.get("baseline_rss_gib"))),
    ("mismatches after full load", lambda r: _mismatch_total(r, "mismatches_full_load")),
    ("mismatches after increment", _mismatch_total),
    (
        "monthly figures shown (checked)",
        lambda r: _fmt(((r.get("mismatches") or {}).get("mart_monthly_outcomes") or {}).get("figures_shown")),
    ),  # fmt: skip
    ("compared with", lambda r: _fmt(r.get("compared_with"))),
    ("load average 1 min (before, after)", lambda r: _fmt(r.get("load_avg_1m"))),
)


def _engine(engine: str, key: str, unit: str = "") -> Callable[[dict[str, Any]], str]:
    """A figure of the Spark column: ``engine`` "duckdb" or "spark" (both full builds of the same store)."""
    return lambda r: _fmt(((r.get("spark") or {}).get(engine) or {}).get(key), unit)


def _spark_parity(r: dict[str, Any]) -> str:
    sp = r.get("spark") or {}
    if sp.get("error"):
        return "error"
    parity = (sp.get("spark") or {}).get("parity")
    if not parity:
        return "–"
    return f"{parity['tables'] - len(parity['differing'])} of {parity['tables']} equal"


# The Spark column (``--engines duckdb,spark``): the size's raw store built in full on DuckDB, then on local
# Spark; both through the real pipeline (dbt, closure, validation, publish), after the timed rows above.
SPARK_METRICS: tuple[tuple[str, Callable[[dict[str, Any]], str]], ...] = (
    ("Spark column: DuckDB full build s", _engine("duckdb", "build_s")),
    ("  DuckDB dbt / closure / validation / publish s",
     lambda r: " / ".join(_engine("duckdb", f"{k}_s")(r) for k in ("dbt", "closure", "validation", "publish"))),
    ("Spark column: Spark full build s", _engine("spark", "build_s")),
    ("  Spark dbt / closure / validation / publish s",
     lambda r: " / ".join(_engine("spark", f"{k}_s")(r) for k in ("dbt", "closure", "validation", "publish"))),
    ("Spark build / DuckDB build", _ratio_of("spark_vs_duckdb_build")),
    ("Spark build / baseline", _ratio_of("spark_build_vs_baseline")),
    ("Spark peak memory GiB (JVM + Python)", _engine("spark", "peak_rss_sampled_gib")),
    ("Spark published tables equal DuckDB's", _spark_parity),
)  # fmt: skip


def _metrics(rows: list[dict[str, Any]]) -> tuple[tuple[str, Callable[[dict[str, Any]], str]], ...]:
    """The summary table's rows: the Spark column's only when some size ran it."""
    return METRICS + (SPARK_METRICS if any(r.get("spark") for r in rows) else ())


def _spark_section(r: dict[str, Any]) -> list[str]:
    """Where Spark's time went at this size (the Spark child's own steps, dbt's node seconds)."""
    sp = r.get("spark") or {}
    if sp.get("error"):
        return ["- Spark column failed:", "```", str(sp["error"])[:3000], "```"]
    s = sp.get("spark") or {}
    return [
        f"- Spark column: child steps (s, summed over the build and the closure's re-runs): "
        f"{json.dumps(s.get('child_steps_s'))}",
        f"- Spark dbt node seconds by type: {json.dumps(s.get('node_seconds'))}; nodes: "
        f"{json.dumps(s.get('node_counts'))}; dbt invocations: {s.get('invocations')}",
        f"- Spark slowest models: {json.dumps(s.get('slowest_models'), default=str)}",
        f"- Spark parity: {json.dumps(s.get('parity'))}",
    ]


def _cell(r: dict[str, Any], fn: Callable[[dict[str, Any]], str]) -> str:
    return "error" if r.get("error") else fn(r)


def _target_line(t: dict[str, Any]) -> str:
    note = "" if t["verdict"] != "NOT RUN" or t["size"] is None else f" (indicative, at {t['size']:,})"
    return f"{t['description']} [{t['shape']} batches]: {_fmt(t['value'])}{note}"


def _column(r: dict[str, Any]) -> str:
    return f"{r['size']:,} {r.get('shape', 'small')}"


def render_markdown(report: dict[str, Any]) -> str:
    rows = report["sizes"]
    lines = [
        f"# Benchmark {report['started_at']}",
        "",
        f"Finished {report['finished_at']}."
        if report.get("finished_at")
        else "**Not finished** (the run was stopped or is still going): only the sizes and shapes below ran.",
        "",
        f"Machine: {report['machine']}. Pipeline = ingest + build (dbt, algebraic closure, validation, publish); "
        "baseline = `bench/baseline.sql` over the same batch files (see bench/README.md). Peak memory = total "
        "RSS of the pipeline process and its dbt child, sampled 4×/s. Shapes: "
        + "; ".join(f"**{k}**: {v}" for k, v in report.get("shapes", {}).items())
        + ".",
        "",
    ]
    if report.get("parts"):
        lines += [
            "Merged from runs that went on at the same time or one after another (each part's own report):",
            "",
        ]
        lines += [f"- {part}" for part in report["parts"]]
        lines.append("")
    if report.get("notes"):
        lines += [f"Note: {note}" for note in report["notes"]]
        lines.append("")
    if report.get("other_load"):
        lines += [
            "Other work on the machine during the run (top processes by CPU at the start of each size):",
            "",
        ]
        lines += [f"- {entry}" for entry in report["other_load"]]
        lines.append("")
    lines += [
        "| | " + " | ".join(_column(r) for r in rows) + " |",
        "|---" * (len(rows) + 1) + "|",
    ]
    lines += [f"| {label} | " + " | ".join(_cell(r, fn) for r in rows) + " |" for label, fn in _metrics(rows)]
    lines += ["", "## Targets", ""]
    lines += [f"- **{t['verdict']}** {_target_line(t)} (limit {t['limit']})" for t in report["targets"]]
    growth = report.get("growth") or {}
    if growth:
        stages = [label for label, _ in GROWTH_STAGES]
        lines += [
            "",
            f"## Growth exponents (slope of log time over log sessions, {GROWTH_FROM:,} and up)",
            "",
        ]
        lines += ["| shape | " + " | ".join(stages) + " |", "|---" * (len(stages) + 1) + "|"]
        lines += [
            f"| {shape} | " + " | ".join(_fmt(values.get(s)) for s in stages) + " |"
            for shape, values in growth.items()
        ]
    for r in rows:
        lines += ["", f"## {_column(r)}", ""]
        if r.get("error"):
            lines += ["```", str(r["error"])[:3000], "```"]
            continue
        for key in ("build_message", "incr_message", "closure_summary", "incr_closure_summary"):
            if r.get(key):
                lines.append(f"- {key}: {r[key]}")
        lines.append(
            f"- wall time {_fmt(r.get('wall_s'))} s; load average before/after: {r.get('load_avg_1m')}"
        )
        for key in ("ingest_summary", "incr_ingest_summary", "dbt_nodes", "incr_dbt_nodes", "dbt_phases",
                    "incr_dbt_phases", "rss_after_stage"):  # fmt: skip
            if r.get(key):
                lines.append(f"- {key}: {json.dumps(r[key], default=str)}")
        for key in ("dbt_invocations", "incr_dbt_invocations"):
            for i, inv in enumerate(r.get(key) or []):
                lines.append(
                    f"- {key}[{i}]: `dbt {inv['args']}` {inv['seconds']} s; phases {json.dumps(inv['phases'])}; "
                    f"nodes {json.dumps(inv['nodes'], default=str)}"
                )
        if r.get("spark"):
            lines += _spark_section(r)
        for label, key in (("after full load", "mismatches_full_load"), ("after increment", "mismatches")):
            for table, m in (r.get(key) or {}).items():
                summary = {k: v for k, v in m.items() if k != "examples"}
                lines.append(f"- mismatches {label}, {table}: {json.dumps(summary)}")
                lines += [f"    - {json.dumps(ex, default=str)}" for ex in (m.get("examples") or [])[:8]]
        if r.get("dashboard"):
            lines += ["", "| dashboard read | p50 ms | p95 ms | max ms |", "|---|---|---|---|"]
            lines += [
                f"| {q} | {v['p50_ms']:.1f} | {v['p95_ms']:.1f} | {v['max_ms']:.1f} |"
                if "p95_ms" in v
                else f"| {q} | {v['error']} | | |"
                for q, v in r["dashboard"].items()
            ]
    return "\n".join(lines) + "\n"


def summarize_latency(row: dict[str, Any]) -> None:
    """The slowest page read and the SQL box's p95, into the size's row."""
    latency = row.get("dashboard") or {}
    name, p95 = slowest_page_read(latency)
    row["dashboard_p95_max_ms"] = p95
    row["dashboard_slowest"] = name
    box = next((v for v in latency.values() if v.get("sql_box") and "p95_ms" in v), None)
    row["sql_box_p95_ms"] = box["p95_ms"] if box else None


def print_table(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(title="Registry benchmark")
    table.add_column("")
    for r in report["sizes"]:
        table.add_column(_column(r), justify="right")
    for label, fn in _metrics(report["sizes"]):
        table.add_row(label, *[_cell(r, fn) for r in report["sizes"]])
    console.print(table)
    for r in report["sizes"]:
        if r.get("error"):
            console.print(f"[red]{_column(r)}: {str(r['error'])[:800]}[/red]", highlight=False)
        elif r.get("build_status") != "published":
            console.print(f"[yellow]{_column(r)}: {r.get('build_message')}[/yellow]", highlight=False)
    colours = {"PASS": "green", "MISS": "red", "NOT RUN": "yellow", "NO DATA": "yellow"}
    for t in report["targets"]:
        console.print(f"[{colours[t['verdict']]}]{t['verdict']:>7}[/] {_target_line(t)}", highlight=False)
