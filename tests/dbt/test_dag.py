"""The shape of the dbt project, read from dbt's manifest: a one-way DAG (staging -> intermediate -> marts,
no intermediate or staging model reading a mart) and every mart declaring its publication tier (SPEC §1)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from dbt_registry_data import create_registry

from outcome_registry import dbt_runner
from outcome_registry.paths import RegistryHome

pytestmark = pytest.mark.slow

LAYERS = {"models/staging/": 0, "models/intermediate/": 1, "models/marts/": 2}
# dbt Labs' names say the layer too: a model is held to the stricter of its folder and its name, so an
# int_ model kept among the marts may not read a mart either.
NAME_LAYERS = {"stg_": 0, "int_": 1, "fct_": 2, "dim_": 2, "mart_": 2, "dq_": 2}
TIERS = {"aggregate", "row_level", "restricted"}


def _layers(node: dict[str, Any]) -> list[int]:
    """The layers a model's folder and its name prefix put it in (none, one or two)."""
    path, name = node.get("original_file_path", ""), node.get("name", "")
    by_path = [rank for prefix, rank in LAYERS.items() if path.startswith(prefix)]
    by_name = [rank for prefix, rank in NAME_LAYERS.items() if name.startswith(prefix)]
    return by_path + by_name


@pytest.fixture(scope="module")
def manifest(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    home = RegistryHome.at(Path(tmp_path_factory.mktemp("dag")))
    create_registry(home)
    result = dbt_runner.run_dbt(home, ["parse"])
    assert result.success, result.log_tail
    return json.loads((home.dbt_target_dir / "manifest.json").read_text())


def models(manifest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {uid: n for uid, n in manifest["nodes"].items() if n["resource_type"] == "model"}


def upstream_layer_violations(manifest: dict[str, Any]) -> list[str]:
    """Every model that reads a model of a later layer (e.g. an intermediate model reading a mart): the
    reader counts at its earliest layer (folder or name), what it reads at its latest."""
    nodes = models(manifest)
    problems = []
    for node in nodes.values():
        mine = _layers(node)
        for dep in node["depends_on"]["nodes"]:
            theirs = _layers(nodes[dep]) if dep in nodes else []
            if mine and theirs and max(theirs) > min(mine):
                problems.append(f"{node['original_file_path']} reads {nodes[dep]['original_file_path']}")
    return problems


def misplaced_models(manifest: dict[str, Any]) -> list[str]:
    """Every model whose name prefix says another layer than its folder (an int_ model among the marts)."""
    return sorted(
        node["original_file_path"] for node in models(manifest).values() if len(set(_layers(node))) > 1
    )


def test_no_staging_or_intermediate_model_depends_on_a_later_layer(manifest: dict[str, Any]) -> None:
    assert upstream_layer_violations(manifest) == []


def test_the_check_finds_an_intermediate_model_reading_a_mart(manifest: dict[str, Any]) -> None:
    # the check has teeth: make int_outcome_cube read fct_courses in a copy of the manifest
    broken = json.loads(json.dumps(manifest))
    nodes = models(broken)
    cube = next(n for n in nodes.values() if n["name"] == "int_outcome_cube")
    fct = next(uid for uid, n in nodes.items() if n["name"] == "fct_courses")
    cube["depends_on"]["nodes"].append(fct)
    assert upstream_layer_violations(broken) == [
        "models/intermediate/int_outcome_cube.sql reads models/marts/core/fct_courses.sql"
    ]


def test_the_check_finds_an_int_model_among_the_marts_reading_a_mart(manifest: dict[str, Any]) -> None:
    # as int_quality_course_strata once was: in models/marts/quality/, schema intermediate, reading fct_courses
    broken = json.loads(json.dumps(manifest))
    nodes = models(broken)
    strata = next(n for n in nodes.values() if n["name"] == "int_quality_course_strata")
    strata["original_file_path"] = "models/marts/quality/int_quality_course_strata.sql"
    fct = next(uid for uid, n in nodes.items() if n["name"] == "fct_courses")
    strata["depends_on"]["nodes"].append(fct)
    # ...and a model filed among the marts counts as a mart for the intermediate models that read it
    assert sorted(upstream_layer_violations(broken)) == [
        "models/intermediate/quality/int_quality_casemix_cells.sql reads "
        "models/marts/quality/int_quality_course_strata.sql",
        "models/marts/quality/int_quality_course_strata.sql reads models/marts/core/fct_courses.sql",
    ]
    assert misplaced_models(broken) == ["models/marts/quality/int_quality_course_strata.sql"]


def test_every_model_is_in_the_folder_its_name_says(manifest: dict[str, Any]) -> None:
    assert misplaced_models(manifest) == []


def test_marts_are_grouped_by_audience(manifest: dict[str, Any]) -> None:
    folders = {
        Path(n["original_file_path"]).parent.name
        for n in models(manifest).values()
        if n["original_file_path"].startswith("models/marts/")
    }
    assert folders <= {"core", "outcomes", "data_quality", "quality"}
    assert {"core", "outcomes", "data_quality"} <= folders


OWN_FOLDERS = ("models/marts/core/", "models/marts/outcomes/", "models/marts/data_quality/")


def test_every_mart_declares_its_tier_and_clinic_scope(manifest: dict[str, Any]) -> None:
    for node in models(manifest).values():
        if not node["original_file_path"].startswith(OWN_FOLDERS):
            continue
        meta = node["config"].get("meta", {})
        assert meta.get("tier") in TIERS, node["name"]
        columns = set(node["columns"])
        # clinic_scoped means "has clinic_id" (the publish step filters on it)
        assert meta.get("clinic_scoped") is ("clinic_id" in columns), node["name"]
        if "clinic_id" in columns:
            assert "clinic_code" in columns, node["name"]
        if meta["tier"] == "aggregate" and node["original_file_path"].startswith("models/marts/outcomes/"):
            # every count and every figure has its flag, every row its suppression columns
            counts = {c for c in columns if c.startswith("n_") and not c.endswith("_flag")}
            assert {f"{c}_flag" for c in counts} <= columns, node["name"]
            assert {"is_suppressed", "suppression_reason"} <= columns, node["name"]
