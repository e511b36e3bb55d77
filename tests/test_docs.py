"""docs/ARCHITECTURE.md documents every table publish writes, in the tier publish writes it to.

The list comes from the publish plan itself: the marts' tiers as ``publish.table_tiers`` reads them from
dbt's manifest (after a real ``dbt parse``), and the tables publish adds from ``meta.*``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from outcome_registry import dbt_runner, publish
from outcome_registry.paths import PROJECT_DIR, RegistryHome
from outcome_registry.store import connect

pytestmark = pytest.mark.slow

ARCHITECTURE = PROJECT_DIR / "docs" / "ARCHITECTURE.md"
# | `table` | tier | ...: the rows of the "Published tables" section
ROW = re.compile(r"^\| `([a-z0-9_]+)` \| ([a-z_ ]+) \|", re.MULTILINE)


def documented() -> dict[str, str]:
    text = ARCHITECTURE.read_text(encoding="utf-8")
    section = text.split("## Published tables", 1)[1].split("\n## ", 1)[0]
    return {name: tier.strip() for name, tier in ROW.findall(section)}


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """table -> tier, for every table a publish writes."""
    home = RegistryHome.at(Path(tmp_path_factory.mktemp("docs")) / "home")
    connect(home).close()  # a writer creates the store the dbt profile attaches
    result = dbt_runner.run_dbt(home, ["parse"])
    assert result.success, result.log_tail
    tables = {name: spec.tier for name, spec in publish.table_tiers(home).items()}
    tables.update(dict.fromkeys(publish.ROW_LEVEL_META.values(), publish.ROW_LEVEL))
    tables.update(dict.fromkeys(publish.RESTRICTED_META.values(), publish.RESTRICTED))
    tables["clinic_identity"] = "clinic file only"
    return tables


def test_every_published_table_is_documented_in_its_tier(published: dict[str, str]) -> None:
    docs = documented()
    assert sorted(set(published) - set(docs)) == [], "published but not in docs/ARCHITECTURE.md"
    assert {t: docs[t] for t in published} == published


def test_no_documented_table_is_gone(published: dict[str, str]) -> None:
    assert sorted(set(documented()) - set(published)) == []


def test_the_check_reads_the_table_rows() -> None:
    docs = documented()
    assert docs["fct_courses"] == "row_level"
    assert docs["dq_builds"] == "row_level"
    assert docs["mart_monthly_outcomes"] == "aggregate"
    assert len(docs) > 30


LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


@pytest.mark.parametrize("page", ["README.md", *sorted(p.name for p in (PROJECT_DIR / "docs").glob("*.md"))])
def test_every_local_link_leads_to_a_file(page: str) -> None:
    path = PROJECT_DIR / page if page == "README.md" else PROJECT_DIR / "docs" / page
    targets = [t for t in LINK.findall(path.read_text(encoding="utf-8")) if "://" not in t]
    missing = [t for t in targets if not (path.parent / t).exists()]
    assert missing == [], f"{page} links to missing files"
