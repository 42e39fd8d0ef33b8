"""The Docker deployment for real: `prefect deploy` builds the image from the Dockerfile
and pushes it to a registry, a Docker worker pulls it and runs the flow in a container,
and the report reaches the chat. The setup and both runs (a good week, then one that a
dbt test stops) are the `docker_deployment` fixture's (tests/docker_deployment.py),
shared with the UI test.

Skips with the reason printed when no Docker engine, registry or TCP PostgreSQL is
there; under CI (CI=true) it fails instead.
"""

from __future__ import annotations

import json

import pytest

from tests.docker_deployment import (
    AS_OF,
    CHAT_ID,
    FAILING_CHECK,
    POOL,
    REGISTRY,
    SMALL_SHOP,
    DockerDeployment,
    prefect_client,
    run_parameters,
)

pytestmark = pytest.mark.slow

IMAGE_USER = "churn"  # the Dockerfile's unprivileged user
IMAGE_UID = "10001"
IMAGE_WORKDIR = "/opt/churn"  # also the deployment's pull step directory


def test_deploy_builds_the_image_pushes_it_and_records_the_deployment(
    docker_deployment: DockerDeployment,
) -> None:
    deployed = docker_deployment
    tag = deployed.image.rsplit(":", 1)[1]
    assert tag in deployed.registry_tags, deployed.registry_tags
    assert deployed.local_copy_removed

    with prefect_client(deployed.api_url) as client:
        deployment = client.read_deployment(deployed.deployment_id)
    assert deployment.work_pool_name == POOL
    assert deployment.entrypoint == "flows/main.py:churn_pipeline"
    assert deployment.job_variables["image"] == deployed.image
    assert deployment.job_variables["env"] == {"PREFECT_HOME": "/home/churn/.prefect"}
    (schedule,) = deployment.schedules
    assert schedule.schedule.cron == "0 8 * * 1"
    assert schedule.schedule.timezone == "America/Sao_Paulo"
    assert deployment.global_concurrency_limit is not None
    assert deployment.global_concurrency_limit.limit == 1

    # rm/forcerm: every container the build made for its RUN steps was removed.
    created = {e["id"] for e in deployed.deploy_events if e.get("Action") == "create"}
    destroyed = {e["id"] for e in deployed.deploy_events if e.get("Action") == "destroy"}
    assert created, "the build made no container: was the image built at all?"
    assert created <= destroyed, f"build containers left behind: {created - destroyed}"
    for secret in deployed.secrets:
        assert secret not in deployed.deploy_output


def test_the_image_holds_the_code_and_dbt_parse_but_no_local_state(
    docker_deployment: DockerDeployment,
) -> None:
    lines = docker_deployment.image_probe.split()
    assert lines[:5] == [IMAGE_USER, IMAGE_UID, IMAGE_WORKDIR, "/opt/venv/bin/python", "parsed"], (
        lines
    )
    # .dockerignore kept secrets (.env), the venv, tests and local state out of the build.
    assert not [line for line in lines if line.startswith("present:")], lines
    # The venv and the project's own code come compiled to bytecode.
    assert "compiled" in lines, lines
    assert lines[-1].startswith("3."), lines


def test_the_worker_pulls_the_image_from_the_registry_and_the_report_reaches_the_chat(
    docker_deployment: DockerDeployment,
) -> None:
    run = docker_deployment.completed
    assert run.flow_run.state_type.value == "COMPLETED", run.worker_log[-5000:]
    pulls = [e for e in run.image_events if e.get("Action") == "pull"]
    assert [e["id"] for e in pulls] == [docker_deployment.image], run.image_events
    assert f"Pulling image '{docker_deployment.image}'" in run.worker_log
    assert docker_deployment.image.startswith(f"{REGISTRY}/")

    # The run's params replaced the deployment's whole: the small shop, the fixed week,
    # the deployment's locale and blocks.
    params = run.flow_run.parameters["params"]
    assert params == run_parameters()
    assert params["customers"] == SMALL_SHOP["customers"] and params["as_of"] == AS_OF.isoformat()

    messages = docker_deployment.report_messages
    methods = [message.method for message in messages]
    assert methods[0] == "sendPhoto" and "sendMessage" in methods, methods
    assert {message.chat_id for message in messages} == {CHAT_ID}
    text = "\n".join(message.plain_text or "" for message in messages)
    assert "Relatório semanal de evasão" in text  # the deployment's locale, pt_BR
    # The customer model was fitted in the container, by its unprivileged user, from a
    # read-only image: nothing to compile or download at run time.
    assert "Previsão de evasão" in text and "Previsão indisponível" not in text
    # Built in the block's warehouse, not in an embedded fallback.
    with docker_deployment.warehouse.connect() as conn:
        row = conn.execute(
            "select count(*) from marts.churn_weekly where week_end = %s", (AS_OF,)
        ).fetchone()
        fit = conn.execute(
            "select status from prediction.model_fits where as_of_date = %s", (AS_OF,)
        ).fetchall()
    assert row == (1,)
    assert fit == [("converged",)]


def test_the_container_ran_as_the_image_user_on_the_host_network_and_was_removed(
    docker_deployment: DockerDeployment,
) -> None:
    for run in (docker_deployment.completed, docker_deployment.failed):
        container = run.container
        assert container.inspect is not None, "the run's container was never seen running"
        config, host = container.inspect["Config"], container.inspect["HostConfig"]
        assert config["Image"] == docker_deployment.image
        assert config["User"] == IMAGE_USER
        assert config["WorkingDir"] == IMAGE_WORKDIR
        assert not host.get("Privileged")
        assert host["NetworkMode"] == "host"
        assert host["AutoRemove"] is True
        # Every process seen in it ran as the image's user, none as root.
        uids = {uid for uid, _ in container.processes}
        assert uids == {IMAGE_UID}, container.processes
        assert any("prefect flow-run execute" in cmd for _, cmd in container.processes)
        # The job variable's PREFECT_HOME, not the worker's folder of the host.
        assert "PREFECT_HOME=/home/churn/.prefect" in config["Env"]
        assert "Failed to create the Prefect home directory" not in run.worker_log
        # It exited and the engine removed it.
        assert "die" in container.actions and "destroy" in container.actions, container.actions
        assert not container.present_after


def test_neither_the_worker_log_nor_the_container_shows_a_secret(
    docker_deployment: DockerDeployment,
) -> None:
    for run in (docker_deployment.completed, docker_deployment.failed):
        inspect = json.dumps(run.container.inspect)
        for secret in docker_deployment.secrets:
            assert secret not in run.worker_log
            assert secret not in inspect
    # The log was there to look at: the flow's own lines reached the worker's output.
    assert "Week ending" in docker_deployment.completed.worker_log


def test_a_failing_dbt_test_fails_the_run_with_its_name_and_one_alert(
    docker_deployment: DockerDeployment,
) -> None:
    run = docker_deployment.failed
    assert run.flow_run.state_type.value == "FAILED", run.worker_log[-5000:]
    assert FAILING_CHECK in (run.flow_run.state.message or ""), run.flow_run.state.message
    # Nothing reported for the broken week, one alert naming the check, no secret.
    new = docker_deployment.telegram.messages[len(docker_deployment.report_messages) :]
    assert [message.method for message in new] == ["sendMessage"], new
    (alert,) = new
    assert alert.chat_id == CHAT_ID
    text = alert.plain_text or ""
    assert "Churn pipeline failed" in text and FAILING_CHECK in text, text
    for secret in docker_deployment.secrets:
        assert secret not in (alert.text or "")
