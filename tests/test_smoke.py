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
        ("flows.import_files", "import_shop_exports"),
        ("flows.dbt_build", "build_warehouse_models"),
        ("flows.reporting", "send_churn_report"),
        ("flows.prediction", "predict_customer_churn"),
    ],
)
def test_every_flow_imports(module: str, name: str):
    flow = getattr(importlib.import_module(module), name)
    assert isinstance(flow, Flow)
    assert flow.description and len(flow.description) > 40
    # Every flow takes the one parameters model, with its defaults (the UI's form).
    assert flow.parameters.properties["params"]["$ref"].endswith("RunParameters") or (
        "RunParameters" in str(flow.parameters.properties["params"])
    )


def test_the_library_never_imports_a_flow():
    """`churn` is plain code the flows call: importing all of it loads no flow module."""
    import pkgutil
    import subprocess
    import sys

    import churn

    modules = [info.name for info in pkgutil.walk_packages(churn.__path__, "churn.")]
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        "print(sorted(m for m in sys.modules if m == 'flows' or m.startswith('flows.')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert result.stdout.strip() == "[]"
    assert len(modules) > 20


def test_every_prefect_yaml_entrypoint_resolves():
    from prefect.flows import load_flow_from_entrypoint

    config = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    entrypoints = {deployment["entrypoint"] for deployment in config["deployments"]}
    assert entrypoints
    for entrypoint in entrypoints:
        path, _, _ = entrypoint.partition(":")
        assert (ROOT / path).exists()
        assert isinstance(load_flow_from_entrypoint(str(ROOT / entrypoint)), Flow)
