"""Which engine builds the warehouse: DuckDB (the default) or Apache Spark (docs/SPARK.md).

Ingestion, the privacy guard, validation and publish are the same for both: only the dbt build differs.
With Spark the registry store's raw layer is handed over as Parquet, dbt-spark builds the same models,
and the Spark tables come back to DuckDB as views (:mod:`.spark`) for validation and publish.

The engine is chosen per build (``outcome-registry build --engine spark``) or per home
(``[engine] name = "spark"`` in ``config/registry.toml``); the command-line option wins.
"""

from __future__ import annotations

from pathlib import Path

from outcome_registry.errors import RegistryError
from outcome_registry.paths import RegistryHome, read_settings

DUCKDB, SPARK = "duckdb", "spark"
ENGINES = (DUCKDB, SPARK)
DEFAULT_ENGINE = DUCKDB
# Which engine built the working copy last: a build on the other engine starts from scratch.
ENGINE_MARKER = "ENGINE"


def engine_name(home: RegistryHome, override: str | None = None) -> str:
    """The engine for a build: ``override`` if given, else ``[engine] name`` of the home's settings."""
    if override is not None:
        name, where = override, "--engine"
    else:
        section = read_settings(home).get("engine") or {}
        if not isinstance(section, dict):
            raise RegistryError(f'[engine] in {home.settings_file} must be a table (name = "spark").')
        name, where = section.get("name", DEFAULT_ENGINE), f"[engine] name in {home.settings_file}"
    if name not in ENGINES:
        raise RegistryError(f"{where} must be one of {', '.join(ENGINES)}, not {str(name)[:40]!r}.")
    return str(name)


def _marker(home: RegistryHome) -> Path:
    return home.build_dir / ENGINE_MARKER


def previous_engine(home: RegistryHome) -> str | None:
    """The engine that last built this home's working copy (None: unknown, e.g. a home from before)."""
    try:
        name = _marker(home).read_text(encoding="utf-8").strip()
    except OSError:
        return None
    return name if name in ENGINES else None


def switched(home: RegistryHome, engine: str) -> bool:
    """Whether the working copy was last built by another engine (then the build is a full refresh).

    A home without a marker was built by DuckDB (the only engine before this one)."""
    return (previous_engine(home) or DUCKDB) != engine


def mark(home: RegistryHome, engine: str) -> None:
    """Record that ``engine`` now owns the working copy; on a switch to DuckDB, drop the Spark views."""
    if engine == DUCKDB and previous_engine(home) == SPARK:
        # the working copy holds views over Spark's Parquet: dbt-duckdb starts from a new file instead
        home.working_db.unlink(missing_ok=True)
        home.working_db.with_name(home.working_db.name + ".wal").unlink(missing_ok=True)
    home.build_dir.mkdir(parents=True, exist_ok=True)
    _marker(home).write_text(engine + "\n", encoding="utf-8")
