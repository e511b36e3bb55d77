"""`outcome-registry status`: what is loaded, the last build and the last validation."""

from __future__ import annotations

import os
from datetime import datetime
from typing import Any

import duckdb
from rich.console import Console
from rich.table import Table
from rich.text import Text

from outcome_registry.build_lock import current_holder, describe_holder
from outcome_registry.errors import RegistryError
from outcome_registry.paths import RegistryHome
from outcome_registry.pipeline import ACTIVE_STATES, DOING
from outcome_registry.textsafe import cell, plain, safe

RAW_TABLES = ("patients", "infusion_sessions", "pain_scores", "adverse_events", "headache_diary")
RECENT_BUILDS = 5
STATE_COLOURS = {"published": "green", "refused": "red", "failed": "red", "crashed": "red"}


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
        "builds": [],
        "running": None,
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
            keys = (
                "build_id",
                "status",
                "started_at",
                "finished_at",
                "full_refresh",
                "dbt_seconds",
                "validation_seconds",
                "publish_seconds",
                "n_sessions",
                "message",
            )
            rows = con.execute(
                f"select {', '.join(keys)} from meta.builds order by started_at desc limit {RECENT_BUILDS}"
            ).fetchall()
            out["builds"] = [dict(zip(keys, row, strict=True)) for row in rows]
            out["last_build"] = out["builds"][0] if out["builds"] else None
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
    _truthful_states(home, out)
    out["tiers"] = _tiers(home)
    return out


def _truthful_states(home: RegistryHome, out: dict[str, Any]) -> None:
    """A build recorded as running/validating/publishing whose process is gone is shown as crashed.

    ``status`` only reads: the next build records it (pipeline.recover); here ``shown`` says what is true.
    """
    holder = current_holder(home)
    out["running"] = holder
    running_id = (holder or {}).get("build_id")
    for b in out.get("builds", []):
        b["shown"] = b["status"]
        if b["status"] in ACTIVE_STATES and b["build_id"] != running_id:
            b["shown"] = "crashed"
            b["message"] = (
                f"the build process stopped while {DOING[b['status']]} (no process holds the build lock); "
                "the next build will record it and clean up after it"
            )


def _tiers(home: RegistryHome) -> list[tuple[str, str]]:
    """(tier, what is on disk) for each published tier."""
    out = []
    for label, path, link in (
        ("aggregate", home.aggregates_db, home.aggregates_dir),
        ("row-level", home.published_db, home.parquet_dir),
    ):
        if path.exists():
            target = os.readlink(link) if link.is_symlink() else "-"
            written = datetime.fromtimestamp(path.stat().st_mtime)
            out.append(
                (label, f"{path.name} + {link.name}/ -> {target} (written {written:%Y-%m-%d %H:%M:%S})")
            )
    if home.clinics_dir.is_dir():
        clinics = [d for d in home.clinics_dir.iterdir() if (d / "clinic.duckdb").exists()]
        out.append(("per clinic", f"{len(clinics)} clinic file(s) in {home.clinics_dir.name}/"))
    if home.restricted_dir.is_dir():
        files = sorted(p.stem for p in home.restricted_dir.glob("*.parquet"))
        out.append(("restricted", f"{len(files)} file(s): {', '.join(files)}" if files else "empty"))
    return out


def render_status(home: RegistryHome, console: Console) -> None:
    s = collect_status(home)
    console.print(f"[bold]Registry home[/] {safe(s['home'])}", highlight=False)
    if s["running"]:
        console.print(
            f"[bold yellow]A build is running:[/] {safe(describe_holder(s['running']))}", highlight=False
        )
    if not s["batches"]:
        console.print("Nothing loaded yet: `outcome-registry ingest BATCH` or `make run`.")
        return
    console.print(
        f"{s['batches']} batch(es) from {s['clinics']} clinic(s); {s['refusals']} refused attempt(s)",
        highlight=False,
    )
    table = Table(title="Rows (all loaded batches)")
    for col in ("table", "received", "loaded", "quarantined"):
        table.add_column(col, justify="left" if col == "table" else "right")
    for name, v in s["loaded"].items():
        table.add_row(cell(name), f"{v['received']:,}", f"{v['loaded']:,}", f"{v['quarantined']:,}")
    console.print(table)
    if s.get("quarantine_rules"):
        rules = Table(title="Most frequent quarantine rules")
        for col in ("table", "rule", "rows"):
            rules.add_column(col, justify="right" if col == "rows" else "left")
        for table_name, rule, n in s["quarantine_rules"]:
            rules.add_row(cell(table_name), cell(rule), f"{n:,}")
        console.print(rules)
    if s["builds"]:
        console.print(f"[bold]Builds[/] (latest {len(s['builds'])}, newest first)")
        for b in s["builds"]:
            shown = b["shown"]
            times = ", ".join(
                f"{label} {b[key]:.1f}s"
                for label, key in (("dbt", "dbt_seconds"), ("validation", "validation_seconds"),
                                   ("publish", "publish_seconds"))
                if b[key]
            )  # fmt: skip
            started = f"{b['started_at']:%Y-%m-%d %H:%M:%S}" if b["started_at"] else "?"
            console.print(
                f"  {safe(b['build_id'])} [{STATE_COLOURS.get(shown, 'yellow')}]{shown}[/] started {started}"
                + (f"; {times}" if times else "")
                + (" (full refresh)" if b["full_refresh"] else ""),
                highlight=False,
            )
            if b["message"]:
                console.print(Text("      " + plain(b["message"])[:600]), highlight=False)
    v = s["last_validation"]
    if v:
        console.print(
            f"[bold]Last validation[/] {safe(v['build_id'])} at {v['run_at']}: {v['passed']}/{v['expectations']} "
            f"passed, {v['blocking_failed']} blocking failure(s), {v['warnings']} warning(s)",
            highlight=False,
        )
    if s["tiers"]:
        for label, text in s["tiers"]:
            console.print(f"[bold]Published {label}[/] {safe(text)}", highlight=False)
    else:
        console.print("[yellow]No build has been published yet.[/]")
