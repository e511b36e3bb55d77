"""`outcome-registry status`: what is loaded, the last build and the last validation."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import duckdb
from rich.console import Console
from rich.table import Table

from outcome_registry.errors import RegistryError
from outcome_registry.paths import RegistryHome

RAW_TABLES = ("patients", "infusion_sessions", "pain_scores", "adverse_events", "headache_diary")


def _tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    rows = con.execute("select schema_name || '.' || table_name from duckdb_tables()").fetchall()
    return {r[0] for r in rows}


def collect_status(home: RegistryHome) -> dict[str, Any]:
    """Everything `status` shows, as plain data (also used by tests)."""
    out: dict[str, Any] = {
        "home": str(home.root),
        "loaded": {},
        "batches": 0,
        "clinics": 0,
        "refusals": 0,
        "quarantined": 0,
        "last_build": None,
        "last_validation": None,
        "published_at": None,
    }
    if not home.registry_db.exists():
        return out
    try:
        con = duckdb.connect(str(home.registry_db), read_only=True)
    except duckdb.Error as e:
        raise RegistryError(f"The registry store is busy (another load or build holds it): {e}") from None
    with con:
        have = _tables(con)
        if "meta.batches" in have:
            out["batches"], out["clinics"] = con.execute(
                "select count(*), count(distinct clinic_id) from meta.batches"
            ).fetchone()
        if "meta.load_audit" in have:
            for table, received, loaded, quarantined in con.execute(
                "select table_name, sum(rows_received), sum(rows_loaded), sum(rows_quarantined) "
                "from meta.load_audit group by 1 order by 1"
            ).fetchall():
                out["loaded"][table] = {
                    "received": int(received),
                    "loaded": int(loaded),
                    "quarantined": int(quarantined),
                }
            out["quarantined"] = sum(v["quarantined"] for v in out["loaded"].values())
        if "meta.quarantine" in have:
            out["quarantine_rules"] = con.execute(
                "select table_name, rule, count(*) from meta.quarantine group by all order by 3 desc, 1, 2 limit 10"
            ).fetchall()
        if "meta.refusals" in have:
            out["refusals"] = con.execute("select count(*) from meta.refusals").fetchone()[0]
        if "meta.builds" in have:
            row = con.execute(
                "select build_id, status, finished_at, full_refresh, dbt_seconds, validation_seconds, "
                "publish_seconds, n_sessions, message from meta.builds order by started_at desc limit 1"
            ).fetchone()
            if row:
                keys = (
                    "build_id",
                    "status",
                    "finished_at",
                    "full_refresh",
                    "dbt_seconds",
                    "validation_seconds",
                    "publish_seconds",
                    "n_sessions",
                    "message",
                )
                out["last_build"] = dict(zip(keys, row, strict=True))
        if "meta.validation_results" in have:
            row = con.execute(
                """
                with last_run as (
                    select build_id from meta.validation_results order by run_at desc limit 1
                )
                select v.build_id, max(v.run_at), count(*),
                       count(*) filter (where v.success),
                       count(*) filter (where not v.success and v.blocking),
                       count(*) filter (where not v.success and not v.blocking)
                from meta.validation_results as v
                inner join last_run using (build_id)
                group by v.build_id
                """
            ).fetchone()
            if row:
                keys = ("build_id", "run_at", "expectations", "passed", "blocking_failed", "warnings")
                out["last_validation"] = dict(zip(keys, row, strict=True))
    if home.published_db.exists():
        out["published_at"] = datetime.fromtimestamp(home.published_db.stat().st_mtime)
    return out


def render_status(home: RegistryHome, console: Console) -> None:
    s = collect_status(home)
    console.print(f"[bold]Registry home[/] {s['home']}")
    if not s["batches"]:
        console.print("Nothing loaded yet: `outcome-registry ingest BATCH` or `make run`.")
        return
    console.print(
        f"{s['batches']} batch(es) from {s['clinics']} clinic(s); {s['refusals']} refused attempt(s)"
    )
    table = Table(title="Rows (all loaded batches)")
    for col in ("table", "received", "loaded", "quarantined"):
        table.add_column(col, justify="left" if col == "table" else "right")
    for name, v in s["loaded"].items():
        table.add_row(name, f"{v['received']:,}", f"{v['loaded']:,}", f"{v['quarantined']:,}")
    console.print(table)
    if s.get("quarantine_rules"):
        rules = Table(title="Most frequent quarantine rules")
        for col in ("table", "rule", "rows"):
            rules.add_column(col, justify="right" if col == "rows" else "left")
        for table_name, rule, n in s["quarantine_rules"]:
            rules.add_row(table_name, rule, f"{n:,}")
        console.print(rules)
    b = s["last_build"]
    if b:
        colour = {"published": "green", "refused": "red", "failed": "red"}.get(b["status"], "white")
        console.print(
            f"[bold]Last build[/] {b['build_id']} [{colour}]{b['status']}[/] at {b['finished_at']}: "
            f"dbt {b['dbt_seconds'] or 0:.1f}s, validation {b['validation_seconds'] or 0:.1f}s, "
            f"publish {b['publish_seconds'] or 0:.1f}s; {b['message'] or ''}",
            highlight=False,
        )
    v = s["last_validation"]
    if v:
        console.print(
            f"[bold]Last validation[/] {v['build_id']} at {v['run_at']}: {v['passed']}/{v['expectations']} passed, "
            f"{v['blocking_failed']} blocking failure(s), {v['warnings']} warning(s)",
            highlight=False,
        )
    if s["published_at"]:
        console.print(
            f"[bold]Published[/] {home.published_db} (written {s['published_at']:%Y-%m-%d %H:%M:%S})"
        )
    else:
        console.print("[yellow]No build has been published yet.[/]")
