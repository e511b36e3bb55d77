"""The `outcome-registry` command line."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from outcome_registry.errors import RegistryError, is_os_level, os_error_message
from outcome_registry.paths import RegistryHome
from outcome_registry.textsafe import cell, safe

app = typer.Typer(
    name="outcome-registry",
    help=(
        "Outcome registry for ketamine infusion therapy in chronic and refractory migraine: load clinic "
        "batches, build and validate the warehouse, publish it, and serve the dashboard."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err = Console(stderr=True)

HomeOpt = Annotated[
    Path | None,
    typer.Option(
        "--home",
        envvar="REGISTRY_HOME",
        help="Where the warehouse and its state live (default ./registry_home).",
        show_default=False,
    ),
]


class _State:
    home: Path | None = None


def _home() -> RegistryHome:
    home = RegistryHome.at(_State.home)
    _log_to(home)
    return home


def _log_to(home: RegistryHome) -> None:
    """The package's warnings go to state/registry.log, not to the terminal (where they would interleave
    with the one-paragraph messages). A log that cannot be written (a full disk) is skipped silently."""
    import logging

    logging.raiseExceptions = False
    logger = logging.getLogger("outcome_registry")
    if any(getattr(h, "_registry_home", None) == home.root for h in logger.handlers):
        return
    for old in [h for h in logger.handlers if hasattr(h, "_registry_home")]:
        logger.removeHandler(old)
        old.close()
    try:
        fd = os.open(home.state_dir / "registry.log", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        os.close(fd)
        handler: logging.Handler = logging.FileHandler(home.state_dir / "registry.log", encoding="utf-8")
    except OSError:
        handler = logging.NullHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    handler._registry_home = home.root  # type: ignore[attr-defined]
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False


@app.callback()
def main(home: HomeOpt = None) -> None:
    _State.home = home


def _fail(message: str, code: int = 1) -> None:
    err.print(f"[bold red]error:[/] {safe(message)}", soft_wrap=True, highlight=False)
    raise typer.Exit(code)


def _progress() -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )


@app.command()
def generate(
    out: Annotated[Path, typer.Option("--out", help="Folder to write batch folders into.")],
    patients: Annotated[int | None, typer.Option(help="Number of patients (or give --sessions).")] = None,
    sessions: Annotated[int | None, typer.Option(help="Approximate number of sessions.")] = None,
    clinics: Annotated[int, typer.Option(help="Number of clinics (one is small, one does worse).")] = 6,
    seed: Annotated[int, typer.Option(help="Random seed: same seed, same files.")] = 7,
    months: Annotated[int, typer.Option(help="Months of extracts, one batch per clinic per month.")] = 24,
    start: Annotated[str, typer.Option(help="First extract month, YYYY-MM.")] = "2024-01",
    faults: Annotated[float, typer.Option(help="Share of rows given a contract violation (0..1).")] = 0.0,
    small_clinics: Annotated[
        int, typer.Option(help="Extra clinics with only a few patients each (small-cell tests).")
    ] = 0,
    demo_issues: Annotated[
        bool,
        typer.Option(
            "--demo-issues",
            help="Also write a few faulty rows and one batch the privacy guard refuses (for the demo).",
        ),
    ] = False,
) -> None:
    """Write contract-valid demo batches (with manifests) for testing and demos."""
    from outcome_registry import generate as gen

    if patients is None and sessions is None:
        patients = 600
    if not 0.0 <= faults <= 1.0:
        _fail("--faults must be between 0 and 1.", 2)
    with console.status("generating batches"):
        batches = gen.generate(
            out,
            patients=patients,
            sessions=sessions,
            clinics=clinics,
            seed=seed,
            faults=faults,
            start=start,
            months=months,
            small_clinics=small_clinics,
            demo_issues=demo_issues,
        )
    console.print(f"wrote {len(batches)} batches to {safe(out)}", highlight=False)


def _ingest(home: RegistryHome, batches: list[Path]) -> bool:
    from outcome_registry import ingest

    missing = [str(b) for b in batches if not b.exists() and not b.is_symlink()]
    if missing:
        _fail(f"No such batch file or folder: {', '.join(missing)}.", 2)
    with _progress() as bar:
        task = bar.add_task("ingest", total=None)

        def tick(done: int, total: int, result) -> None:
            bar.update(task, description=f"ingest {safe(result.batch_id or '')}", completed=done, total=total)

        results = ingest.ingest_paths(home, batches, progress=tick)
    # One row per batch reads well for a handful; for many, show the totals and only the batches that
    # need attention (refused, or with quarantined rows).
    rows = [
        (r, sum(v[0] for v in r.files.values()), sum(v[1] for v in r.files.values()),
         sum(v[2] for v in r.files.values()))
        for r in results
    ]  # fmt: skip
    shown = rows if len(rows) <= 20 else [row for row in rows if row[0].status == "refused" or row[3]]
    table = Table(title="Ingestion" if len(rows) <= 20 else "Ingestion: batches that need attention")
    for col in ("batch", "status", "received", "loaded", "quarantined"):
        table.add_column(col, justify="left" if col in ("batch", "status") else "right")
    for r, received, loaded, quarantined in shown:
        style = "red" if r.status == "refused" else ("yellow" if quarantined else "")
        table.add_row(cell(r.batch_id or r.source_name or "?"), cell(r.status), f"{received:,}", f"{loaded:,}",
                      f"{quarantined:,}", style=style)  # fmt: skip
    if shown:
        console.print(table)
    by_status: dict[str, int] = {}
    for r, *_ in rows:
        by_status[r.status] = by_status.get(r.status, 0) + 1
    console.print(
        f"{len(rows)} batch(es): "
        + ", ".join(f"{n} {safe(status)}" for status, n in sorted(by_status.items()))
        + f"; rows received {sum(x[1] for x in rows):,}, loaded {sum(x[2] for x in rows):,}, "
        f"quarantined {sum(x[3] for x in rows):,}"
    )
    if any(x[3] for x in rows):
        console.print(
            "Quarantined rows, by rule, are on the dashboard's Data quality page (and in meta.quarantine)."
        )
    ok = all(r.status != "refused" for r in results)
    for r in results:
        if r.status == "refused":
            err.print(f"[bold red]refused:[/] {safe(r.message)}", soft_wrap=True, highlight=False)
    return ok


@app.command("ingest")
def ingest_cmd(
    batches: Annotated[list[Path], typer.Argument(help="Batch folders, .zip files, or folders of batches.")],
) -> None:
    """Load batches: manifest check, privacy guard, row checks (bad rows go to quarantine)."""
    if not _ingest(_home(), batches):
        raise typer.Exit(3)


@app.command()
def withdraw(
    patient: Annotated[str, typer.Option("--patient", help="The patient_id whose consent was withdrawn.")],
    reason: Annotated[
        str | None, typer.Option(help="Why (plain text, no names or contact details; kept in the audit).")
    ] = None,
    compact: Annotated[
        bool,
        typer.Option(
            "--compact/--no-compact",
            help="Rewrite the store afterwards so no free page keeps the deleted values (default).",
        ),
    ] = True,
) -> None:
    """Withdraw a patient: delete their rows from every batch, audited (the id is kept only as a salted hash).

    Later batches that send the patient again have those rows quarantined. The published warehouse
    changes at the next build.
    """
    from outcome_registry.withdraw import withdraw as withdraw_patient

    result = withdraw_patient(_home(), patient, reason=reason, compact=compact)
    console.print(safe(result.message), soft_wrap=True, highlight=False)


FullRefreshOpt = Annotated[
    bool, typer.Option("--full-refresh", help="Rebuild every model from scratch (not incrementally).")
]
WaitOpt = Annotated[
    float,
    typer.Option(
        "--wait",
        metavar="SECONDS",
        min=0,
        help="If another build holds this home, wait up to this long for it (default: fail at once, naming it).",
    ),
]


EngineOpt = Annotated[
    str | None,
    typer.Option(
        "--engine",
        metavar="duckdb|spark",
        help="Build with DuckDB (the default) or Apache Spark (docs/SPARK.md); default: [engine] name in "
        "config/registry.toml, else duckdb.",
        show_default=False,
    ),
]


def _build(home: RegistryHome, full_refresh: bool, wait: float = 0.0, engine: str | None = None) -> None:
    from outcome_registry import pipeline

    with console.status("building") as status:
        result = pipeline.build(
            home,
            full_refresh=full_refresh,
            wait=wait,
            progress=lambda m: status.update(escape(m)),
            engine=engine,
        )
    for note in result.recovered:
        console.print(f"[yellow]recovered:[/] {safe(note)}", soft_wrap=True, highlight=False)
    console.print(
        f"build {result.build_id} [bold green]published[/]: dbt {result.dbt_seconds:.1f}s, "
        f"validation {result.validation_seconds:.1f}s, publish {result.publish_seconds:.1f}s"
        + (" (full refresh)" if result.full_refresh else " (incremental)"),
        highlight=False,
    )
    for w in result.warnings:
        console.print(f"[yellow]warning:[/] {safe(w)}", soft_wrap=True, highlight=False)
    console.print(f"published: {safe(home.published_dir)} (tiers: docs/OPERATIONS.md)", highlight=False)


@app.command()
def build(full_refresh: FullRefreshOpt = False, wait: WaitOpt = 0.0, engine: EngineOpt = None) -> None:
    """Run dbt, validate with Great Expectations, and publish only a build that passes.

    One build runs at a time per home. Exit codes: 0 published, 1 failed, 4 refused by the gate,
    5 another build holds the home.
    """
    _build(_home(), full_refresh, wait, engine)


@app.command()
def run(
    batches: Annotated[list[Path], typer.Argument(help="Batch folders, .zip files, or folders of batches.")],
    full_refresh: FullRefreshOpt = False,
    wait: WaitOpt = 0.0,
    engine: EngineOpt = None,
) -> None:
    """Ingest batches, then build, validate and publish.

    Exit code 3 when some batches were refused but the others were built and published.
    """
    from outcome_registry.engines import engine_name

    home = _home()
    engine_name(home, engine)  # a wrong engine setting fails before anything is loaded
    ok = _ingest(home, batches)
    _build(home, full_refresh, wait, engine)
    if not ok:
        err.print("Some batches were refused (see above); the build contains the others.")
        raise typer.Exit(3)


@app.command()
def status() -> None:
    """What is loaded, the last build and the last validation."""
    from outcome_registry.status import render_status

    render_status(_home(), console)


@app.command()
def sql(
    query: Annotated[str, typer.Argument(help="One read-only SELECT over the published tables.")],
    limit: Annotated[
        int,
        typer.Option(min=1, max=100_000, help="Return at most this many rows (you are told if more exist)."),
    ] = 100,
    timeout: Annotated[
        float, typer.Option(min=0.1, max=30.0, metavar="SECONDS", help="Stop the query after this long.")
    ] = 30.0,
    as_role: Annotated[
        str,
        typer.Option(
            "--as-role",
            help="Run with the rights of this role: staff (default; the local operator, also sees the "
            "restricted tables as restricted.<name>) or analyst (the row-level tier only).",
        ),
    ] = "staff",
    csv: Annotated[bool, typer.Option("--csv", help="Print CSV instead of a table.")] = False,
) -> None:
    """Query the published warehouse read-only, as the local operator; every query is logged.

    One SELECT (or WITH, DESCRIBE, SHOW TABLES, SUMMARIZE); writes, settings, file access and other
    databases are refused (exit code 2). Limits: 30 s, 1 GB of memory, 100,000 rows.
    """
    import getpass

    from outcome_registry.access import Principal, Role
    from outcome_registry.readonly_sql import run_query

    roles = {"staff": Role.STAFF, "analyst": Role.ANALYST}
    if as_role not in roles:
        _fail("--as-role must be staff or analyst: the SQL box is for analysts and registry staff.", 2)
    user = getpass.getuser()
    principal = Principal(user=user, role=roles[as_role], clinic_id=None, display_name=f"{user} (command line)",
                          local=True)  # fmt: skip
    result = run_query(_home(), principal, query, limit=limit, timeout=timeout)
    df = result.frame
    if csv:
        sys.stdout.write(df.to_csv(index=False))
    else:
        table = Table(show_lines=False)
        for c in df.columns:
            table.add_column(cell(c))
        for row in df.itertuples(index=False):
            table.add_row(*[cell("" if _is_missing(v) else v) for v in row])
        console.print(table)
        console.print(f"{len(df):,} row(s) in {result.seconds:.1f} s", highlight=False)
    if result.truncated:
        err.print(
            f"[yellow]note:[/] the result has more rows than the limit; only the first {len(df):,} are shown. "
            "Raise --limit (up to 100,000) or aggregate in SQL.",
            soft_wrap=True,
            highlight=False,
        )


def _is_missing(value: object) -> bool:
    """NULL in a query result: None, pandas' NA (nullable integers) or a float NaN."""
    import pandas as pd

    return value is None or value is pd.NA or (isinstance(value, float) and value != value)


@app.command()
def dashboard(
    port: Annotated[int, typer.Option(help="Port to serve on.")] = 8501,
    address: Annotated[
        str, typer.Option(help="Address to bind; any other than 127.0.0.1 needs sign-in (docs/ACCESS.md).")
    ] = "127.0.0.1",
) -> None:
    """Serve the Streamlit dashboard over the published warehouse (sign-in and roles: docs/ACCESS.md)."""
    from rich.markup import escape

    import dashboard as dashboard_app
    from outcome_registry import access, auth

    home = _home()
    auth.check_bind(home, address)  # the local operator (no provider) is served on the loopback only
    secrets_file = auth.runtime_secrets(home)  # also validates config/auth.toml
    if secrets_file is None:
        console.print("No identity provider configured: serving the local operator (registry staff) only.")
    elif access.load_access_config(home) is None:
        err.print(
            f"[yellow]warning:[/] {escape(str(access.access_path(home)))} does not exist, so every "
            "signed-in user will be refused until it maps claims to roles (docs/ACCESS.md).",
            soft_wrap=True,
            highlight=False,
        )
    env = dict(os.environ, REGISTRY_HOME=str(home.root))
    console.print(f"Dashboard: http://{address}:{port}")
    cmd = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(Path(dashboard_app.__file__).resolve().parent / "streamlit_app.py"),
        "--server.port",
        str(port),
        "--server.address",
        address,
        "--server.headless",
        "true",
        "--server.enableXsrfProtection",
        "true",
        "--browser.gatherUsageStats",
        "false",
        "--client.toolbarMode",
        "minimal",
    ]
    if secrets_file is not None:
        cmd += ["--secrets.files", str(secrets_file)]
    sys.stdout.flush()
    # Become the server (rather than wait on a child) so that signals from a terminal, make or a service
    # manager reach Streamlit itself and no orphaned server is left behind.
    os.execve(sys.executable, cmd, env)


@app.command()
def docs() -> None:
    """Generate dbt docs (and the GX Data Docs of the last validation) for this home."""
    from outcome_registry import dbt_runner

    home = _home()
    result = dbt_runner.docs(home)
    if not result.success:
        _fail("dbt docs generate failed: " + "; ".join(result.failures or [result.log_tail[-500:]]))
    console.print(f"dbt docs: {home.dbt_target_dir / 'index.html'}", highlight=False)
    console.print(
        f"  serve them with: python -m http.server --directory {home.dbt_target_dir} 8080 "
        "(then open http://localhost:8080)",
        highlight=False,
    )
    gx_docs = home.gx_dir / "data_docs" / "index.html"
    if gx_docs.exists():
        console.print(f"Great Expectations Data Docs of the last validation: {gx_docs}", highlight=False)


@app.command()
def report(
    month: Annotated[str, typer.Option(help="The month of the pack, YYYY-MM (e.g. 2025-11).")],
    out: Annotated[Path, typer.Option(help="Folder the packs are written to (created if missing).")],
    clinic: Annotated[
        list[str] | None,
        typer.Option(
            help="A clinic id whose pack to write (repeat for several). Default: every clinic with a published "
            "clinic file. The registry pack is always written."
        ),
    ] = None,
) -> None:
    """Write the monthly pack: a PDF and an HTML file for the registry and one per clinic.

    The registry pack shows what a report reader may see (clinics under pseudonyms); a clinic's pack shows
    what that clinic's reviewer may see (its own clinic named). The dashboard's download gives the same files.
    """
    from outcome_registry.access import local_operator
    from outcome_registry.report import parse_month, write_packs

    home = _home()
    written = write_packs(home, local_operator(), parse_month(month), out, clinic)
    for path in written:
        console.print(f"wrote {escape(path.name)}", highlight=False)
    console.print(f"{len(written)} file(s) in {escape(str(out))}", highlight=False)


@app.command()
def bench(
    sizes: Annotated[str, typer.Option(help="Comma-separated session counts.")] = "10000,100000,1000000",
    include_10m: Annotated[bool, typer.Option("--10m", help="Also run 10 million sessions.")] = False,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 7,
    out: Annotated[Path, typer.Option(help="Where reports go.")] = Path("bench/results"),
    shapes: Annotated[
        str,
        typer.Option(help="Batch shapes: small (one batch per clinic and month), large (one per clinic)."),
    ] = "small,large",
    engines: Annotated[
        str,
        typer.Option(help="duckdb, or duckdb,spark to add the Spark column (local Spark, needs Java 17)."),
    ] = "duckdb",
    spark_sizes: Annotated[str, typer.Option(help="Sizes that get the Spark column.")] = "100k,1m",
) -> None:
    """Benchmark every stage against a hand-written DuckDB baseline (and, with --engines duckdb,spark,
    the same build on local Spark)."""
    from outcome_registry import bench as bench_mod

    size_list = bench_mod.parse_sizes(sizes)
    if include_10m and 10_000_000 not in size_list:
        size_list.append(10_000_000)
    bench_mod.run_bench(
        size_list,
        out_dir=out,
        include_10m=include_10m,
        seed=seed,
        shapes=bench_mod.parse_names(shapes),
        engines=bench_mod.parse_names(engines),
        spark_sizes=tuple(bench_mod.parse_sizes(spark_sizes)),
    )


def entry() -> None:
    """Console entry point: every RegistryError becomes one paragraph and an exit code, never a traceback."""
    try:
        rc = app(standalone_mode=False)
        if isinstance(rc, int):
            sys.exit(rc)
    except RegistryError as e:
        err.print(f"[bold red]error:[/] {safe(e.message)}", soft_wrap=True, highlight=False)
        sys.exit(e.exit_code)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        err.print("aborted")
        sys.exit(130)
    except Exception as e:  # noqa: BLE001 - last line of defence: say what happened without a traceback
        import click

        # Usage errors (a bad option value, a missing argument): Typer vendors its own copy of click.
        if isinstance(
            e, click.ClickException | getattr(typer, "TyperException", click.ClickException)
        ) and hasattr(e, "show"):
            e.show()
            sys.exit(getattr(e, "exit_code", 2))
        if os.environ.get("REGISTRY_DEBUG"):
            raise
        if is_os_level(e):  # a full disk, a permission: the operator can act on it
            home = (
                _State.home if _State.home is not None else os.environ.get("REGISTRY_HOME") or "registry_home"
            )
            message = os_error_message(e, Path(home).expanduser().resolve(), "this command")
            err.print(f"[bold red]error:[/] {safe(message)}", soft_wrap=True, highlight=False)
            sys.exit(1)
        err.print(
            f"[bold red]internal error:[/] {type(e).__name__} ({safe(str(e).splitlines()[0][:300] if str(e) else '')})"
            ". Set REGISTRY_DEBUG=1 to see the traceback.",
            soft_wrap=True,
            highlight=False,
        )
        sys.exit(1)


if __name__ == "__main__":
    entry()
