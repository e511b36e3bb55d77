"""The SQL box behind ``outcome-registry sql`` (and available to the dashboard's SQL page): one vetted read
over the published files the asking principal may open, with a time limit, a memory cap and a row cap.

Layers, each holding on its own:

1. :mod:`sql_guard` vets the statement on DuckDB's parse tree (one SELECT, allowed functions, published
   tables only).
2. The statement runs in a separate worker process (``python -m outcome_registry.readonly_sql``) that
   opens only the files of the principal's role (SPEC §2), read-only, then switches external access off
   and locks the configuration. The worker has DuckDB's ``memory_limit`` (operators fail cleanly) and an
   address-space limit (``RLIMIT_AS``: even a single function building a huge string fails with DuckDB's
   out-of-memory error instead of growing the machine's memory), a small spill allowance, and it dies with
   its parent. A worker is used because DuckDB checks an interrupt only between chunks of rows: the
   parent enforces the time limit for certain by killing the worker's process group.
3. At most ``limit + 1`` rows are fetched inside DuckDB, so the caller knows when the cap cut the result.

Every query, run or refused, is written to the access log with the user (``access_log.record``).
Messages never contain a server path.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from outcome_registry.dbt_runner import die_with_parent
from outcome_registry.errors import RegistryError
from outcome_registry.sql_guard import QueryRefused, check, check_query, scrub_paths

if TYPE_CHECKING:
    import pandas as pd

    from outcome_registry.access import Principal
    from outcome_registry.paths import RegistryHome

# The dashboard's SQL page uses the same limits.
QUERY_TIMEOUT_SECONDS = 30.0
MAX_ROWS = 100_000
DEFAULT_ROWS = 1_000
SQL_MEMORY_LIMIT = "1GB"  # DuckDB's buffer pool for one query
SQL_TEMP_LIMIT = "512MB"  # spill allowance for one query
SQL_ADDRESS_SPACE = 3 * 1024**3  # the worker process as a whole (Python and DuckDB ~0.4 GB of it)
KILL_GRACE_SECONDS = 3.0
WORKER_MODULE = "outcome_registry.readonly_sql"


@dataclass
class QueryResult:
    frame: pd.DataFrame
    truncated: bool  # the row cap cut the result (there were more rows)
    seconds: float
    limit: int


def _scrub(text: str, home: RegistryHome | None = None) -> str:
    """DuckDB's message without any file path (and only its first line)."""
    first = (text or "").strip().splitlines()[0] if text and text.strip() else "error"
    if home is not None:
        first = first.replace(str(home.root), "<home>")
    return scrub_paths(first)[:500]


# ------------------------------------------------------------------------------------------ who reads what


def sources_for(home: RegistryHome, principal: Principal) -> tuple[list[tuple[str, Path]], list[Path]]:
    """(attached databases as (alias, file), restricted Parquet files) the principal's role may query."""
    from outcome_registry.access import Role
    from outcome_registry.contract import SAFE_ID

    role = principal.role
    if role in (Role.REPORT_READER, Role.CLINIC_REVIEWER):
        dbs = [("aggregates", home.aggregates_db)]
        if role is Role.CLINIC_REVIEWER:
            clinic = principal.clinic_id or ""
            if not SAFE_ID.match(clinic):
                raise QueryRefused("This clinic reviewer's clinic is not a known clinic; nothing was run.")
            dbs.append(("clinic", home.clinic_db(clinic)))
    else:
        dbs = [("published", home.published_db)]
    missing = [alias for alias, path in dbs if not path.exists()]
    if missing:
        raise RegistryError(
            f"No published {' and '.join(missing)} file in this home yet: run `outcome-registry run BATCH` "
            "(or `make run`) first."
        )
    restricted = sorted(home.restricted_dir.glob("*.parquet")) if role is Role.STAFF else []
    return dbs, restricted


# ------------------------------------------------------------------------------------------ the parent side


def _limit_worker() -> None:
    """preexec_fn of the worker: address-space cap, and death with the parent (Linux)."""
    resource.setrlimit(resource.RLIMIT_AS, (SQL_ADDRESS_SPACE, SQL_ADDRESS_SPACE))
    die_with_parent()


def _run_worker(request: dict[str, Any], timeout: float) -> tuple[dict[str, Any], bytes]:
    """Run one request in a worker; (header, Arrow IPC bytes). Kills the worker at timeout + grace."""
    proc = subprocess.Popen(
        [sys.executable, "-m", WORKER_MODULE],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        preexec_fn=_limit_worker,  # setrlimit and prctl only; both modules are imported already
    )
    try:
        out, _ = proc.communicate(json.dumps(request).encode("utf-8"), timeout=timeout + KILL_GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return {"ok": False, "kind": "timeout"}, b""
    finally:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    header, _, body = out.partition(b"\n")
    try:
        parsed = json.loads(header.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        parsed = {"ok": False, "kind": "died", "returncode": proc.returncode}
    return parsed, body


def _error(header: dict[str, Any], timeout: float) -> QueryRefused:
    kind = header.get("kind")
    if kind == "timeout":
        return QueryRefused(
            f"The query ran longer than {timeout:.0f} s and was stopped. Aggregate or filter further (join on "
            "keys; a join without a condition multiplies the rows of both tables)."
        )
    if kind in ("memory", "died"):
        return QueryRefused(
            f"The query needed more memory than the query box allows ({SQL_MEMORY_LIMIT} for tables, "
            f"{SQL_ADDRESS_SPACE // 1024**3} GB in all) and was stopped. Aggregate in SQL, select fewer "
            "columns, or filter further."
        )
    message = str(header.get("message") or "The query failed.")
    return QueryRefused(message)


def run_query(
    home: RegistryHome,
    principal: Principal,
    sql: str,
    *,
    limit: int = DEFAULT_ROWS,
    timeout: float = QUERY_TIMEOUT_SECONDS,
) -> QueryResult:
    """Run one vetted read for ``principal``; at most ``limit`` rows (capped at MAX_ROWS), at most
    ``timeout`` seconds (capped at QUERY_TIMEOUT_SECONDS). Logs it; raises QueryRefused (exit code 2)."""
    import pyarrow as pa

    from outcome_registry import access_log

    limit = max(1, min(int(limit), MAX_ROWS))
    timeout = max(0.1, min(float(timeout), QUERY_TIMEOUT_SECONDS))
    start = time.perf_counter()
    if not principal.sees_row_level:  # SPEC §2: the SQL box exists for analysts and staff only
        access_log.record(
            home, principal, "denied", "sql", ok=False, detail="the SQL box is for analysts and staff"
        )
        raise QueryRefused("The SQL box is for analysts and registry staff; this role cannot run queries.")
    try:
        databases, restricted = sources_for(home, principal)
        catalogs = [alias for alias, _ in databases] + (["restricted"] if restricted else [])
        statement = check_query(sql, catalogs=catalogs)  # early refusal, without starting a worker
        tmp = home.duckdb_tmp_dir / f"sql-{uuid.uuid4().hex}"
        request = {
            "sql": statement,
            "limit": limit,
            "timeout": timeout,
            "databases": [[alias, str(path)] for alias, path in databases],
            "restricted": [str(p) for p in restricted],
            "memory_limit": SQL_MEMORY_LIMIT,
            "temp_limit": SQL_TEMP_LIMIT,
            "temp_directory": str(tmp),
        }
        try:
            header, body = _run_worker(request, timeout)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        if not header.get("ok"):
            raise _error(header, timeout)
        table = pa.ipc.open_stream(body).read_all() if body else pa.table({})
        # integer columns stay integers when they hold nulls (pandas' default would turn them into floats)
        frame: pd.DataFrame = table.to_pandas(types_mapper=_nullable_integers().get)
    except QueryRefused as exc:
        access_log.record(home, principal, "sql", sql or "", rows=None, ok=False, detail=exc.message)
        raise
    truncated = len(frame) > limit
    frame = frame.head(limit)
    access_log.record(home, principal, "sql", statement, rows=len(frame), ok=True,
                      detail="row cap reached" if truncated else None)  # fmt: skip
    return QueryResult(frame, truncated, time.perf_counter() - start, limit)


def _nullable_integers() -> dict[Any, Any]:
    """Arrow integer types -> pandas' nullable integer dtypes."""
    import pandas as pd
    import pyarrow as pa

    return {
        pa.int8(): pd.Int8Dtype(), pa.int16(): pd.Int16Dtype(), pa.int32(): pd.Int32Dtype(),
        pa.int64(): pd.Int64Dtype(), pa.uint8(): pd.UInt8Dtype(), pa.uint16(): pd.UInt16Dtype(),
        pa.uint32(): pd.UInt32Dtype(), pa.uint64(): pd.UInt64Dtype(),
    }  # fmt: skip


def run_readonly_query(home: RegistryHome, query: str, *, limit: int = DEFAULT_ROWS) -> pd.DataFrame:
    """The local operator's query (staff), as a frame: kept for callers of the first version."""
    from outcome_registry.access import local_operator

    return run_query(home, local_operator(), query, limit=limit).frame


# ------------------------------------------------------------------------------------------ the worker side


def _emit(header: dict[str, Any], body: bytes = b"") -> None:
    sys.stdout.buffer.write(json.dumps(header).encode("utf-8") + b"\n" + body)
    sys.stdout.buffer.flush()


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _worker(request: dict[str, Any]) -> None:
    import duckdb
    import pyarrow as pa

    tmp = Path(request["temp_directory"])
    tmp.mkdir(mode=0o700, parents=True, exist_ok=True)
    con = duckdb.connect(
        ":memory:",
        config={
            "memory_limit": request["memory_limit"],
            "max_temp_directory_size": request["temp_limit"],
            "temp_directory": str(tmp),
            "threads": 2,
        },
    )
    aliases = [alias for alias, _ in request["databases"]]
    try:
        for alias, path in request["databases"]:
            con.execute(f"ATTACH {_quote(path)} AS {alias} (READ_ONLY)")
        if request["restricted"]:
            con.execute("ATTACH ':memory:' AS restricted")
            for path in request["restricted"]:
                con.execute(
                    f'CREATE TABLE restricted.main."{Path(path).stem}" AS SELECT * FROM read_parquet({_quote(path)})'
                )
            aliases.append("restricted")
    except duckdb.Error:
        _emit(
            {
                "ok": False,
                "kind": "failed",
                "message": "A published file could not be opened; retry in a moment.",
            }
        )
        return
    con.execute(f"USE {aliases[0]}")
    con.execute("SET search_path = " + _quote(",".join(f"{a}.main" for a in aliases)))
    # From here on, nothing in this connection can read, write or change a file or a setting.
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")
    rows = con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE database_name IN (SELECT unnest(?::VARCHAR[])) "
        "UNION SELECT view_name FROM duckdb_views() WHERE NOT internal AND database_name IN "
        "(SELECT unnest(?::VARCHAR[]))",
        [aliases, aliases],
    ).fetchall()
    try:
        vetted = check(request["sql"], tables=[r[0] for r in rows], catalogs=aliases)
    except QueryRefused as exc:
        _emit({"ok": False, "kind": "refused", "message": exc.message})
        return
    timer = threading.Timer(float(request["timeout"]), con.interrupt)
    timer.daemon = True
    timer.start()
    try:
        table = con.sql(vetted.sql).limit(int(request["limit"]) + 1).to_arrow_table()
    except duckdb.InterruptException:
        _emit({"ok": False, "kind": "timeout"})
        return
    except duckdb.OutOfMemoryException:
        _emit({"ok": False, "kind": "memory"})
        return
    except MemoryError:
        _emit({"ok": False, "kind": "memory"})
        return
    except duckdb.PermissionException:
        _emit({"ok": False, "kind": "refused", "message": "The query tried to reach files or settings, which "
               "the query box does not allow."})  # fmt: skip
        return
    except duckdb.Error as exc:
        _emit({"ok": False, "kind": "failed", "message": f"The query failed: {_scrub(str(exc))}"})
        return
    finally:
        timer.cancel()
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    _emit({"ok": True, "rows": table.num_rows}, sink.getvalue().to_pybytes())


def _worker_main() -> int:
    try:
        request = json.loads(sys.stdin.buffer.read().decode("utf-8"))
        _worker(request)
    except MemoryError:
        _emit({"ok": False, "kind": "memory"})
    except Exception as exc:  # noqa: BLE001 - the parent turns this into one plain paragraph
        _emit({"ok": False, "kind": "failed", "message": f"The query failed ({type(exc).__name__})."})
    return 0


if __name__ == "__main__":
    sys.exit(_worker_main())
