"""Shared fixture: the quality models compiled once per test session (see quality_sql)."""

from __future__ import annotations

import os

import pytest
from quality_sql import Compiled, compile_quality

os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "False")


@pytest.fixture(scope="session")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> Compiled:
    return compile_quality(tmp_path_factory.mktemp("quality_compile"))
