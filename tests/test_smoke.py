"""Every flow imports, and every prefect.yaml entrypoint resolves to a flow."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
import yaml
from prefect import Flow

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("flows.main", "churn_pipeline"),
        ("flows.generation", "generate_shop_activity"),
        ("flows.dbt_build", "build_warehouse_models"),
        ("flows.reporting", "send_churn_report"),
    ],
)
def test_every_flow_imports(module: str, name: str):
    flow = getattr(importlib.import_module(module), name)
    assert isinstance(flow, Flow)
    assert flow.description and len(flow.description) > 40


def test_every_prefect_yaml_entrypoint_resolves():
    from prefect.flows import load_flow_from_entrypoint

    config = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    entrypoints = {deployment["entrypoint"] for deployment in config["deployments"]}
    assert entrypoints
    for entrypoint in entrypoints:
        path, _, _ = entrypoint.partition(":")
        assert (ROOT / path).exists()
        assert isinstance(load_flow_from_entrypoint(str(ROOT / entrypoint)), Flow)
