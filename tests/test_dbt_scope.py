"""The checks window's declarations (dbt/macros/checks_window.sql) cannot go astray quietly.

Each source table and model in the window declares it in its own yml entry. A model
renamed without its entry leaves the declaration on no node, which `dbt parse
--warn-error` (CI) refuses; a declaration naming a parent that is not in the project fails
every test of the relation when it compiles. dbt runs on a copy of the project here, and
never reaches a database.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from dbt.cli.main import dbtRunner

PROJECT_DIR = Path(__file__).resolve().parent.parent / "dbt"
VARS = "{as_of_date: 2026-11-23, churn_window_days: 90}"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the dbt project, without what earlier runs left in it."""
    copy = tmp_path / "dbt"
    shutil.copytree(
        PROJECT_DIR, copy, ignore=shutil.ignore_patterns("target", "logs", "dbt_packages")
    )
    # No command here needs a database: a connection attempt would fail at once.
    monkeypatch.setenv("CHURN_WAREHOUSE_HOST", "127.0.0.1")
    monkeypatch.setenv("CHURN_WAREHOUSE_PORT", "1")
    monkeypatch.setenv("DO_NOT_TRACK", "1")
    return copy


def dbt(project: Path, *args: str) -> Any:
    """One dbt command on the copy, its files under the copy."""
    return dbtRunner().invoke(
        [
            *args,
            "--quiet",
            "--project-dir",
            str(project),
            "--profiles-dir",
            str(project),
            "--target-path",
            str(project / "target"),
        ]
    )


def model_entry(yml: Path, name: str) -> dict[str, Any]:
    return next(
        model for model in yaml.safe_load(yml.read_text())["models"] if model["name"] == name
    )


def declaration(item: dict[str, Any]) -> dict[str, Any] | None:
    return item.get("config", {}).get("meta", {}).get("checks_window")


def test_the_declarations_reach_the_nodes_and_name_parents_that_exist(project: Path) -> None:
    result = dbt(project, "parse", "--warn-error")
    assert result.success, result.exception
    manifest = result.result
    declared = {
        unique_id: node.config.meta["checks_window"]
        for unique_id, node in [*manifest.nodes.items(), *manifest.sources.items()]
        if "checks_window" in node.config.meta
    }
    assert "model.churn.orders" in declared
    assert "source.churn.shop.orders" in declared
    for unique_id, window in declared.items():
        if "via" not in window:
            assert window["date_column"], unique_id
            continue
        via = window["via"]
        parent_id = (
            f"source.churn.{via.removeprefix('source:')}"
            if via.startswith("source:")
            else f"model.churn.{via}"
        )
        parent = manifest.sources.get(parent_id) or manifest.nodes.get(parent_id)
        assert parent is not None, (unique_id, via)
        assert parent.config.meta["checks_window"]["date_column"], (unique_id, via)


def test_a_model_renamed_without_its_declaration_fails_parsing(project: Path) -> None:
    marts = project / "models" / "marts"
    assert declaration(model_entry(marts / "_marts__models.yml", "orders")) is not None
    (marts / "orders.sql").rename(marts / "orders_renamed.sql")
    result = dbt(project, "parse", "--warn-error")
    assert not result.success
    assert "Did not find matching node for patch with name 'orders'" in str(result.exception)


def test_a_declared_parent_that_does_not_exist_fails_compilation(project: Path) -> None:
    sources = project / "models" / "staging" / "shop" / "_shop__sources.yml"
    document = yaml.safe_load(sources.read_text())
    cancellations = next(
        table for table in document["sources"][0]["tables"] if table["name"] == "cancellations"
    )
    assert declaration(cancellations)["via"] == "source:shop.orders"
    cancellations["config"]["meta"]["checks_window"]["via"] = "source:shop.purchases"
    sources.write_text(yaml.safe_dump(document, sort_keys=False))
    # Without checks_from, as in a full build: the declaration is followed all the same.
    result = dbt(
        project,
        "compile",
        "--no-populate-cache",
        "--no-introspect",
        "--select",
        "source:shop.cancellations",
        "--vars",
        VARS,
    )
    assert not result.success
    message = str(result.exception)
    assert "Compilation Error" in message
    assert (
        "the checks_window of source:shop.cancellations (models/staging/shop/_shop__sources.yml)"
        " is via 'source:shop.purchases', which is not a source" in message
    )
