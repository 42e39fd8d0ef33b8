"""prefect.yaml, checked without Docker and without a server.

`prefect deploy` of the Docker deployment needs a Docker engine for its build step, so
this reads the file the way Prefect does (YAML, then Prefect's own config model) and
checks what the deployment will be: pool, image build and push, schedule, concurrency,
parameters that the flow accepts, and pull steps that put the run in the right folder.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
PREFECT_YAML = ROOT / "prefect.yaml"
ENTRYPOINT = "flows/main.py:churn_pipeline"
BUILD_STEP = "prefect_docker.deployments.steps.build_docker_image"
PUSH_STEP = "prefect_docker.deployments.steps.push_docker_image"
SET_WORKING_DIRECTORY = "prefect.deployments.steps.set_working_directory"
DOCKER_DEPLOYMENT = "weekly-churn-report"
LOCAL_DEPLOYMENT = "weekly-churn-report-local"
IMPORT_DEPLOYMENT = "weekly-churn-report-import"
EVERY_DEPLOYMENT = [DOCKER_DEPLOYMENT, LOCAL_DEPLOYMENT, IMPORT_DEPLOYMENT]


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    loaded = yaml.safe_load(PREFECT_YAML.read_text())
    assert isinstance(loaded, dict)
    return loaded


def deployment(config: dict[str, Any], name: str) -> dict[str, Any]:
    matches = [d for d in config["deployments"] if d.get("name") == name]
    assert len(matches) == 1, f"expected exactly one deployment named {name!r}"
    return matches[0]


def only_step(steps: list[dict[str, Any]], function: str) -> dict[str, Any]:
    """The inputs of the single step calling `function`."""
    assert len(steps) == 1, steps
    ((name, inputs),) = steps[0].items()
    assert name == function
    return inputs


def test_prefect_accepts_every_key(config: dict[str, Any]) -> None:
    """Prefect's own model validates the file and knows every key we wrote.

    Its models ignore unknown keys, so a misspelt key (`schedule:` vs `schedules:`,
    `concurency_limit:`) would silently do nothing: compare the keys against its fields.
    """
    models = pytest.importorskip("prefect.cli.deploy._models")
    model = models.PrefectYamlModel.model_validate(config)
    assert {d.name for d in model.deployments} == set(EVERY_DEPLOYMENT)

    top_level = set(models.PrefectYamlModel.model_fields) | {"prefect-version", "definitions"}
    assert set(config) <= top_level
    deployment_fields = set(models.DeploymentConfig.model_fields)
    pool_fields = set(models.WorkPoolConfig.model_fields)
    for raw in config["deployments"]:
        assert set(raw) <= deployment_fields, raw["name"]
        assert set(raw["work_pool"]) <= pool_fields, raw["name"]
        for schedule in raw["schedules"]:
            models.RawScheduleConfig.model_validate(schedule)


def test_no_top_level_build_or_push(config: dict[str, Any]) -> None:
    # A deployment-level `push: null` falls back to the top-level push: Docker steps at
    # the top would run for the local deployment too.
    assert config.get("build") is None
    assert config.get("push") is None


def test_docker_deployment_runs_in_the_image_built_from_the_dockerfile(
    config: dict[str, Any],
) -> None:
    docker = deployment(config, DOCKER_DEPLOYMENT)
    assert docker["entrypoint"] == ENTRYPOINT
    assert docker["work_pool"]["name"] == "docker-pool"

    build = only_step(docker["build"], BUILD_STEP)
    assert build["id"] == "build-image"
    assert build["dockerfile"] == "Dockerfile"
    assert (ROOT / build["dockerfile"]).is_file()
    assert docker["work_pool"]["job_variables"]["image"] == "{{ build-image.image }}"

    push = only_step(docker["push"], PUSH_STEP)
    assert push["image_name"] == "{{ build-image.image_name }}"
    assert push["tag"] == "{{ build-image.tag }}"


def test_image_name_defaults_to_churn_pipeline_and_takes_a_registry(
    config: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Resolve the build step's inputs as `prefect deploy` does when it runs the step."""
    from prefect.utilities.templating import apply_values

    build = only_step(deployment(config, DOCKER_DEPLOYMENT)["build"], BUILD_STEP)

    monkeypatch.delenv("CHURN_IMAGE_REGISTRY", raising=False)
    monkeypatch.delenv("CHURN_IMAGE_TAG", raising=False)
    resolved = apply_values(build, {})
    assert resolved["image_name"] == "churn-pipeline"
    assert resolved["tag"] == ""  # the build step then tags with a timestamp

    monkeypatch.setenv("CHURN_IMAGE_REGISTRY", "registry.example.com/shop/")
    monkeypatch.setenv("CHURN_IMAGE_TAG", "2026-w48")
    resolved = apply_values(build, {})
    assert resolved["image_name"] == "registry.example.com/shop/churn-pipeline"
    assert resolved["tag"] == "2026-w48"


def test_the_build_removes_its_containers_and_takes_pull_and_network_from_the_environment(
    config: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The keys docker-py's build() receives, as `prefect deploy` resolves them.

    Unset, the placeholders resolve to "": docker-py then sends no network mode (Docker's
    default) and `pull=`, which the engine reads as false (the engine's base image is
    used, pulled only when missing). tests/test_deployment_docker.py builds for real.
    """
    from prefect.utilities.templating import apply_values

    build = only_step(deployment(config, DOCKER_DEPLOYMENT)["build"], BUILD_STEP)
    assert build["rm"] is True and build["forcerm"] is True

    monkeypatch.delenv("CHURN_BUILD_PULL", raising=False)
    monkeypatch.delenv("CHURN_BUILD_NETWORK", raising=False)
    resolved = apply_values(build, {})
    assert (resolved["pull"], resolved["network_mode"]) == ("", "")

    monkeypatch.setenv("CHURN_BUILD_PULL", "true")
    monkeypatch.setenv("CHURN_BUILD_NETWORK", "host")
    resolved = apply_values(build, {})
    assert (resolved["pull"], resolved["network_mode"]) == ("true", "host")


def test_flow_run_containers_keep_prefect_home_in_the_image_users_home(
    config: dict[str, Any],
) -> None:
    # The worker passes its own PREFECT_HOME into the container unless the job says.
    env = deployment(config, DOCKER_DEPLOYMENT)["work_pool"]["job_variables"]["env"]
    dockerfile = (ROOT / "Dockerfile").read_text()
    home = dockerfile.split("--home-dir", 1)[1].split()[0]
    assert env["PREFECT_HOME"].startswith(home + "/")


def test_docker_runs_start_in_the_image_workdir(config: dict[str, Any]) -> None:
    docker = deployment(config, DOCKER_DEPLOYMENT)
    assert "pull" not in docker  # the top-level pull applies
    pull = only_step(config["pull"], SET_WORKING_DIRECTORY)
    dockerfile = (ROOT / "Dockerfile").read_text().splitlines()
    workdirs = [line.split(None, 1)[1].strip() for line in dockerfile if line.startswith("WORKDIR")]
    assert workdirs and pull["directory"] == workdirs[-1]


@pytest.mark.parametrize("name", EVERY_DEPLOYMENT)
def test_weekly_schedule_in_the_shop_time_zone_one_run_at_a_time(
    config: dict[str, Any], name: str
) -> None:
    spec = deployment(config, name)
    assert spec["schedules"] == [
        {"cron": "0 8 * * 1", "timezone": "America/Sao_Paulo", "active": True}
    ]
    assert spec["concurrency_limit"] == {"limit": 1, "collision_strategy": "CANCEL_NEW"}
    assert spec["description"]
    assert spec["tags"]


def test_local_deployment_runs_the_project_folder_on_a_process_pool(
    config: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from prefect.utilities.templating import apply_values

    local = deployment(config, LOCAL_DEPLOYMENT)
    assert local["entrypoint"] == ENTRYPOINT
    assert local["work_pool"]["name"] == "local-pool"
    assert not local.get("build") and not local.get("push")
    pull = only_step(local["pull"], SET_WORKING_DIRECTORY)

    # `prefect deploy` (and, if it was unset then, the worker) fills it in from the
    # environment: it must become the absolute project folder.
    monkeypatch.setenv("CHURN_PROJECT_DIR", str(ROOT))
    directory = apply_values(pull, {})["directory"]
    assert Path(directory).is_absolute()
    assert (Path(directory) / ENTRYPOINT.split(":")[0]).is_file()


@pytest.mark.parametrize("name", EVERY_DEPLOYMENT)
def test_parameters_are_the_flows_own(config: dict[str, Any], name: str) -> None:
    """The deployment's parameters validate as the flow's one parameter, RunParameters."""
    from churn.settings import RunParameters
    from flows.main import churn_pipeline

    spec = deployment(config, name)
    assert set(spec["parameters"]) == set(inspect.signature(churn_pipeline.fn).parameters)
    params = RunParameters.model_validate(spec["parameters"]["params"])
    assert params.dbt_node_tasks is True
    assert params.locale == "pt_BR"
    assert params.warehouse_block == "warehouse" and params.telegram_block == "telegram"


def test_the_import_deployment_reads_the_shops_folder_in_the_same_image(
    config: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real shop's deployment: the export folder mounted read-only where its source
    points, the image built and pushed as the simulated deployment's is, never replacing
    what it did not land."""
    from prefect.utilities.templating import apply_values

    from churn.settings import RunParameters

    docker, imports = deployment(config, DOCKER_DEPLOYMENT), deployment(config, IMPORT_DEPLOYMENT)
    params = RunParameters.model_validate(imports["parameters"]["params"])
    assert params.source_kind == "files" and not params.replace_raw
    monkeypatch.setenv("CHURN_EXPORTS_DIR", "/srv/shop-exports")
    (volume,) = apply_values(imports["work_pool"]["job_variables"], {})["volumes"]
    assert volume == f"/srv/shop-exports:{params.source_path}:ro"
    assert imports["build"] == docker["build"] and imports["push"] == docker["push"]
    shared = {k: v for k, v in imports["work_pool"]["job_variables"].items() if k != "volumes"}
    assert shared == docker["work_pool"]["job_variables"]
