"""Dashboard latency: the page views' reads, through the dashboard's query layer, per role.

Every page reads the published files through ``dashboard.queries.QueryLayer`` built for the signed-in
principal (role, clinic). The benchmark builds one layer per role - report reader (aggregate file), clinic
reviewer (its clinic's file), analyst (row-level file), staff (restricted files) - and times the calls a
first view of each page makes, with the Streamlit cache bypassed (the first view after a publish reads the
file). The analyst's SQL box runs each query in a worker process (``readonly_sql``: parse-tree guard,
limits, a fresh process that opens only the role's files); it is timed apart, since a worker start is part
of what it costs by design.
"""

from __future__ import annotations

import contextlib
import logging
import math
import statistics
import time
from collections.abc import Callable, Iterator
from typing import Any

from outcome_registry.paths import RegistryHome

ALL_COHORT = "all"
REPEATS = 20
SQL_BOX_REPEATS = 5
# The SQL page's typical aggregate over the largest table.
ANALYST_SQL = (
    "SELECT clinic_id, session_month, count(*) AS n, avg(relief_pct) AS relief FROM fct_sessions GROUP BY ALL"
)


@contextlib.contextmanager
def _uncached(queries: Any) -> Iterator[None]:
    """Bypass st.cache_data in the query layer: time the read itself (the first view after a publish)."""
    saved = {}
    for name in ("_cached_sql", "_cached_parquet"):
        fn = getattr(queries, name)
        saved[name] = fn
        setattr(queries, name, getattr(fn, "__wrapped__", fn))
    try:
        yield
    finally:
        for name, fn in saved.items():
            setattr(queries, name, fn)


def _quiet_streamlit() -> None:
    import streamlit  # noqa: F401 - creates its loggers, silenced next

    # Outside `streamlit run`, st.cache_data warns "No runtime found" for each cached function: noise here.
    for name in list(logging.root.manager.loggerDict):
        if name.startswith("streamlit"):
            logging.getLogger(name).setLevel(logging.ERROR)


def page_reads(home: RegistryHome) -> dict[str, Callable[[], Any]]:
    """(role:call) -> the call, with the arguments a first view of the page uses."""
    from dashboard import queries as q
    from outcome_registry.access import Principal, Role

    clinics = sorted(q.published_clinic_ids(home))
    layers = {
        "report_reader": q.QueryLayer(home, Principal("bench-reader", Role.REPORT_READER, None, "Reader")),
        "analyst": q.QueryLayer(home, Principal("bench-analyst", Role.ANALYST, None, "Analyst")),
        "staff": q.QueryLayer(home, Principal("bench-staff", Role.STAFF, None, "Staff")),
    }
    if clinics:
        layers["clinic_reviewer"] = q.QueryLayer(
            home, Principal("bench-reviewer", Role.CLINIC_REVIEWER, clinics[0], "Reviewer")
        )
    calls: dict[str, Callable[[], Any]] = {}
    for role, layer in layers.items():
        months = layer.monthly_months()
        last = months[-1] if months else None
        calls[f"{role}:monthly_months"] = layer.monthly_months
        calls[f"{role}:cohorts"] = layer.cohorts
        if last is not None:
            calls[f"{role}:monthly_series"] = lambda lay=layer, a=months[0], b=last: lay.monthly_series(
                "ALL", ALL_COHORT, a, b
            )
            calls[f"{role}:monthly_month"] = lambda lay=layer, m=last: lay.monthly_month(m, ALL_COHORT)
        periods = layer.benchmark_periods("quarter")
        if len(periods):
            start = periods["period_start"].iloc[0]
            calls[f"{role}:benchmark_period"] = lambda lay=layer, s=start: lay.benchmark_period(
                "quarter", s, ALL_COHORT, "responder_30"
            )
            calls[f"{role}:benchmark_outliers"] = lambda lay=layer, s=start: lay.benchmark_outliers(
                "quarter", s, ALL_COHORT
            )
            if layer.has_quality_review():
                calls[f"{role}:quality_rows"] = lambda lay=layer, s=start: lay.quality_rows(
                    q.FUNNEL, "quarter", s, ALL_COHORT
                )
        for table in sorted(q.COHORT_TABLES):
            calls[f"{role}:cohort:{table}"] = lambda lay=layer, t=table: lay.cohort_rows(t, (ALL_COHORT,))
        calls[f"{role}:cusum_status"] = layer.cusum_status
    for role in ("analyst", "staff"):
        layer = layers[role]
        for table in sorted(q.DQ_TABLES):
            calls[f"{role}:dq:{table}"] = lambda lay=layer, t=table: lay.dq_rows(t)
        if clinics:
            calls[f"{role}:clinic_records:fct_sessions"] = lambda lay=layer, c=clinics[0]: lay.clinic_records(
                c, "fct_sessions"
            )
        calls[f"{role}:schema"] = layer.schema_description
    if "clinic_reviewer" in layers:
        layer = layers["clinic_reviewer"]
        calls["clinic_reviewer:clinic_records:fct_sessions"] = lambda lay=layer, c=clinics[0]: (
            lay.clinic_records(c, "fct_sessions")
        )
        for metric in ("responder_30",):
            calls["clinic_reviewer:cusum_path"] = lambda lay=layer, c=clinics[0], m=metric: lay.cusum_path(
                c, m
            )
    staff = layers["staff"]
    calls["staff:restricted:load_audit"] = lambda: staff.restricted("load_audit")
    calls["staff:restricted:quarantine"] = lambda: staff.restricted_quarantine(None, None)
    return calls


def _percentiles(times: list[float]) -> dict[str, float]:
    times = sorted(times)
    return {
        "p50_ms": statistics.median(times),
        "p95_ms": times[max(0, math.ceil(0.95 * len(times)) - 1)],
        "max_ms": times[-1],
    }


def _time(fn: Callable[[], Any], repeats: int) -> dict[str, Any]:
    try:
        fn()  # warm-up: the OS page cache, not DuckDB, is what a later page view finds warm
    except Exception as exc:  # noqa: BLE001 - a missing table is reported, not fatal
        return {"error": f"{type(exc).__name__}: {str(exc)[:200]}"}
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return _percentiles(times)


def dashboard_latency(home: RegistryHome, repeats: int = REPEATS) -> dict[str, dict[str, Any]]:
    """p50/p95/max milliseconds per page read (uncached) and for the analyst's SQL box."""
    _quiet_streamlit()
    from dashboard import queries as q
    from outcome_registry.access import Principal, Role

    out: dict[str, dict[str, Any]] = {}
    with _uncached(q):
        try:
            calls = page_reads(home)
        except Exception as exc:  # noqa: BLE001 - nothing published, or an older dashboard
            return {"page reads": {"error": f"{type(exc).__name__}: {str(exc)[:200]}"}}
        for name, fn in calls.items():
            out[name] = _time(fn, repeats)
    analyst = q.QueryLayer(home, Principal("bench-analyst", Role.ANALYST, None, "Analyst"))
    box = _time(lambda: analyst.run_sql(ANALYST_SQL, 10_000), SQL_BOX_REPEATS)
    out["analyst:sql_box (worker process)"] = {**box, "sql_box": True}
    return out


def slowest_page_read(latency: dict[str, dict[str, Any]]) -> tuple[str | None, float | None]:
    """The page read with the highest p95 (the SQL box is reported apart)."""
    timed = [(k, v["p95_ms"]) for k, v in latency.items() if "p95_ms" in v and not v.get("sql_box")]
    if not timed:
        return None, None
    return max(timed, key=lambda kv: kv[1])
