"""Shared by the Spark engine's tests (a module of its own: ``conftest`` names several modules in one run)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from outcome_registry.engines import spark as spark_engine


def java_or_skip() -> None:
    java = spark_engine.find_java()
    version = spark_engine.java_version(java) if java else None
    if (version is None or version < spark_engine.JAVA_MIN_VERSION) and not spark_engine._can_install():
        pytest.skip(
            f"the Spark engine needs Java {spark_engine.JAVA_MIN_VERSION}: "
            + (f"found Java {version} at {java}" if java else "no java on PATH or in $JAVA_HOME")
            + f", and it cannot be installed here (not root, or no apt-get): apt-get install "
            f"{spark_engine.JAVA_PACKAGE}"
        )


@dataclass
class SparkPair:
    duckdb_home: Path
    spark_home: Path
    seconds: dict[str, float]
