"""The local deployment for real: `prefect deploy`, a process worker, the report delivered.

Everything runs as an operator would run it, each command a subprocess against a real
`prefect server start` (one for this module): create the process pool, save the blocks
with `python -m blocks`, `prefect --no-prompt deploy --name weekly-churn-report-local`
from the project folder, `prefect deployment run`, then `prefect worker start --run-once`
from another folder. The warehouse is a fresh database on the test PostgreSQL; the chat
is a fake Bot API server in this process, reached over HTTP by the flow run's process.

Needs a PostgreSQL reachable over TCP (TEST_DATABASE_URL): the blocks CLI takes a
host:port URL, which the embedded socket-only server cannot give. About 3-5 minutes on
two busy cores: the server's first start (migrations), then the run itself, whose dbt
build makes a Prefect task of each node (`dbt_node_tasks: true`, as deployed).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import yaml
from prefect.client.schemas.objects import FlowRun

from churn.settings.prefect_server import quiet_env, running_prefect_server, stop_process_group
from churn.warehouse.connection import Warehouse
from tests.conftest import create_database, drop_database
from tests.telegram_fake import FakeTelegramServer

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
FLOW_NAME = "weekly-churn-report"
DEPLOYMENT = "weekly-churn-report-local"
POOL = "local-pool"
PIPELINE_SETTINGS = ("WAREHOUSE_URL", "TELEGRAM_BOT_TOKEN", "TELEGRAM_CHAT_ID", "TELEGRAM_API_URL")

# Distinctive secrets, so "never in a message" is checked by looking for them.
TOKEN = "555666777:DeploymentTest-SeCrEt_token"
CHAT_ID = "-1009876543210"
PASSWORD_WHEN_NONE = "Dpl0y-SeCrEt-pw"  # trust auth ignores it; the flow must still hide it

# A small shop, so the run takes seconds, not minutes; the rest is the deployment's.
AS_OF = dt.date(2026, 11, 23)
SMALL_SHOP = {"customers": 600, "products": 50, "history_days": 150}

COMMAND_TIMEOUT_SECONDS = 180
WORKER_TIMEOUT_SECONDS = 420  # the worker returns when its runs end


@dataclass(frozen=True)
class Deployed:
    """What the module's setup made: the server, the deployment, the places it writes."""

    api_url: str
    deployment_id: str
    warehouse: Warehouse
    password: str
    telegram: FakeTelegramServer
    client_home: Path
    data_dir: Path
    reports_dir: Path
    worker_dir: Path


@contextlib.contextmanager
def timed(label: str) -> Iterator[None]:
    """Print how long a step took (shown with -s): where this module's minutes go."""
    started = time.monotonic()
    try:
        yield
    finally:
        print(f"[deployment-local] {label}: {time.monotonic() - started:.1f} s")


def run_command(
    args: list[str], *, api_url: str, client_home: Path, cwd: Path, **env: str
) -> subprocess.CompletedProcess[str]:
    """Run a command against the test server; fail the test with its output if it fails."""
    label = " ".join(arg for arg in args[1:5] if not arg.startswith("-") and "/" not in arg)
    with timed(label):
        completed = subprocess.run(
            args,
            cwd=cwd,
            env=quiet_env(
                drop=PIPELINE_SETTINGS,
                PREFECT_API_URL=api_url,
                PREFECT_HOME=str(client_home),
                **env,
            ),
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT_SECONDS,
        )
    if completed.returncode != 0:
        pytest.fail(
            f"{' '.join(args[:5])} exited {completed.returncode}:\n"
            f"{completed.stdout[-3000:]}\n{completed.stderr[-3000:]}"
        )
    return completed


def prefect(*args: str) -> list[str]:
    return [sys.executable, "-m", "prefect", *args]


def declared_parameters() -> dict[str, Any]:
    """The local deployment's parameters as prefect.yaml declares them."""
    config = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    (spec,) = [d for d in config["deployments"] if d["name"] == DEPLOYMENT]
    return dict(spec["parameters"])


@contextlib.contextmanager
def prefect_client(api_url: str) -> Iterator[Any]:
    """A synchronous Prefect client talking to the module's server."""
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: api_url}), get_client(sync_client=True) as client:
        yield client


def warehouse_url(warehouse: Warehouse, password: str) -> str:
    return (
        f"postgresql://{quote(warehouse.user, safe='')}:{quote(password, safe='')}"
        f"@{warehouse.host}:{warehouse.port}/{warehouse.database}"
    )


@pytest.fixture(scope="module")
def deployed(
    postgres_admin: Warehouse, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployed]:
    """Server, pool, blocks and deployment, set up once with the operator's commands."""
    if postgres_admin.host.startswith("/"):
        pytest.skip(
            "needs a PostgreSQL reachable over TCP: set TEST_DATABASE_URL "
            "(e.g. postgresql://postgres@127.0.0.1:5432/postgres)"
        )
    base = tmp_path_factory.mktemp("deployment-local")
    warehouse = create_database(postgres_admin, "deploy")
    password = warehouse.password or PASSWORD_WHEN_NONE
    try:
        with contextlib.ExitStack() as stack:
            with timed("prefect server start"):
                api_url = stack.enter_context(running_prefect_server(base / "server-home"))
            telegram = stack.enter_context(FakeTelegramServer(token=TOKEN, chats=(CHAT_ID,)))
            client_home = base / "client-home"
            client_home.mkdir()
            common: dict[str, Any] = {"api_url": api_url, "client_home": client_home}

            run_command(
                prefect("work-pool", "create", POOL, "--type", "process"), cwd=base, **common
            )

            # The blocks CLI, from a folder with its own .env: the project's .env (if a
            # developer has one) must not be read, and a file is how operators use it.
            blocks_dir = base / "blocks"
            blocks_dir.mkdir()
            (blocks_dir / ".env").write_text(
                f"WAREHOUSE_URL={warehouse_url(warehouse, password)}\n"
                f"TELEGRAM_BOT_TOKEN={TOKEN}\n"
                f"TELEGRAM_CHAT_ID={CHAT_ID}\n"
                f"TELEGRAM_API_URL={telegram.base_url}\n"
            )
            saved = run_command(
                [sys.executable, "-m", "blocks"], cwd=blocks_dir, PYTHONPATH=str(ROOT), **common
            )
            assert "warehouse: saved" in saved.stdout and "telegram: saved" in saved.stdout

            prefect_yaml_before = (ROOT / "prefect.yaml").read_bytes()
            run_command(
                prefect("--no-prompt", "deploy", "--name", DEPLOYMENT),
                cwd=ROOT,
                CHURN_PROJECT_DIR=str(ROOT),
                **common,
            )
            # `prefect deploy` can offer to save its answers into prefect.yaml; with
            # --no-prompt it must leave the file (shared with other work) untouched.
            assert (ROOT / "prefect.yaml").read_bytes() == prefect_yaml_before

            with prefect_client(api_url) as client:
                deployment = client.read_deployment_by_name(f"{FLOW_NAME}/{DEPLOYMENT}")
            dirs = {name: base / name for name in ("data", "reports", "worker")}
            for path in dirs.values():
                path.mkdir()
            yield Deployed(
                api_url=api_url,
                deployment_id=str(deployment.id),
                warehouse=replace(warehouse, password=password),
                password=password,
                telegram=telegram,
                client_home=client_home,
                data_dir=dirs["data"],
                reports_dir=dirs["reports"],
                worker_dir=dirs["worker"],
            )
    finally:
        drop_database(postgres_admin, warehouse)


def start_worker_once(deployed: Deployed) -> str:
    """`prefect worker start --run-once` from a folder that is not the project's.

    The worker starts each run in a temporary folder; only the deployment's pull step
    (set_working_directory to the recorded absolute path) can bring it to the code. It
    returns when the runs it picked up have ended; its output is returned for messages.
    """
    log_path = deployed.worker_dir / f"worker-{time.monotonic_ns()}.log"
    with timed("worker start --run-once"), log_path.open("wb") as log:
        worker = subprocess.Popen(
            prefect("worker", "start", "--pool", POOL, "--run-once"),
            cwd=deployed.worker_dir,
            env=quiet_env(
                drop=(*PIPELINE_SETTINGS, "CHURN_PROJECT_DIR"),
                PREFECT_API_URL=deployed.api_url,
                PREFECT_HOME=str(deployed.client_home),
                CHURN_DATA_DIR=str(deployed.data_dir),
                CHURN_REPORTS_DIR=str(deployed.reports_dir),
            ),
            stdout=log,
            stderr=subprocess.STDOUT,
            # Its own session: on a timeout the flow runs' processes it started go too.
            start_new_session=True,
        )
        try:
            worker.wait(timeout=WORKER_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            stop_process_group(worker, timeout=20)
            output = log_path.read_text(errors="replace")
            pytest.fail(f"the worker ran over {WORKER_TIMEOUT_SECONDS} s:\n{output[-4000:]}")
        finally:
            stop_process_group(worker, timeout=20)
    return log_path.read_text(errors="replace")


def flow_runs_of(deployed: Deployed) -> list[Any]:
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    with prefect_client(deployed.api_url) as client:
        return list(
            client.read_flow_runs(
                deployment_filter=DeploymentFilter(
                    id=DeploymentFilterId(any_=[deployed.deployment_id])
                )
            )
        )


def wait_until_final(deployed: Deployed, run_ids: list[str], timeout: float = 60) -> list[Any]:
    """The runs once all are in a final state (the worker may return just before the last
    state is recorded); fails after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        runs = [run for run in flow_runs_of(deployed) if str(run.id) in run_ids]
        if len(runs) == len(run_ids) and all(run.state and run.state.is_final() for run in runs):
            return runs
        if time.monotonic() > deadline:
            states = {str(run.id): run.state_name for run in runs}
            pytest.fail(f"runs not final after {timeout:.0f} s: {states}")
        time.sleep(1)


def test_deploy_records_the_weekly_schedule_one_run_at_a_time_and_the_declared_parameters(
    deployed: Deployed,
) -> None:
    with prefect_client(deployed.api_url) as client:
        deployment = client.read_deployment(deployed.deployment_id)

    (schedule,) = deployment.schedules
    assert schedule.schedule.cron == "0 8 * * 1"
    assert schedule.schedule.timezone == "America/Sao_Paulo"
    assert schedule.active

    assert deployment.global_concurrency_limit is not None
    assert deployment.global_concurrency_limit.limit == 1
    assert deployment.concurrency_options is not None
    assert deployment.concurrency_options.collision_strategy == "CANCEL_NEW"

    assert deployment.parameters == declared_parameters()
    assert deployment.enforce_parameter_schema
    assert deployment.work_pool_name == POOL
    assert deployment.entrypoint == "flows/main.py:churn_pipeline"
    # The placeholder was resolved at deploy time into the absolute project folder.
    (pull_step,) = deployment.pull_steps
    assert pull_step == {
        "prefect.deployments.steps.set_working_directory": {"directory": str(ROOT)}
    }


def test_a_deployment_run_on_a_process_worker_sends_the_report_and_a_concurrent_run_is_cancelled(
    deployed: Deployed,
) -> None:
    # A run's `params` replace the deployment's whole: a backfill restates what it keeps.
    params = {
        "params": {**declared_parameters()["params"], **SMALL_SHOP, "as_of": AS_OF.isoformat()}
    }
    created = run_command(
        prefect(
            "deployment", "run", f"{FLOW_NAME}/{DEPLOYMENT}",
            "--param", f"params={json.dumps(params['params'])}",
        ),
        cwd=deployed.worker_dir,
        api_url=deployed.api_url,
        client_home=deployed.client_home,
    )  # fmt: skip
    # A second run of the same week, due at the same moment: the worker picks up both,
    # and the deployment's limit (1, CANCEL_NEW) must let exactly one of them start.
    with prefect_client(deployed.api_url) as client:
        duplicate: FlowRun = client.create_flow_run_from_deployment(
            deployed.deployment_id, parameters=params
        )
    run_ids = [str(run.id) for run in flow_runs_of(deployed)]
    assert str(duplicate.id) in run_ids and len(run_ids) == 2, created.stdout

    output = start_worker_once(deployed)

    runs = wait_until_final(deployed, run_ids)
    states = sorted(run.state_type.value for run in runs)
    assert states == ["CANCELLED", "COMPLETED"], f"{states}\n{output[-4000:]}"
    (cancelled,) = [run for run in runs if run.state_type.value == "CANCELLED"]
    assert "concurrency limit" in (cancelled.state.message or "").lower()
    (completed,) = [run for run in runs if run.state_type.value == "COMPLETED"]
    # The overrides reached the run, the deployment's own parameters stayed in force.
    assert completed.parameters["params"]["customers"] == SMALL_SHOP["customers"]
    assert completed.parameters["params"]["locale"] == declared_parameters()["params"]["locale"]

    messages = deployed.telegram.messages
    methods = [message.method for message in messages]
    assert methods[0] == "sendPhoto", methods
    assert methods.count("sendPhoto") == 1 and "sendMessage" in methods, methods
    assert {message.chat_id for message in messages} == {CHAT_ID}
    # The flow run's whole log (in the worker's output) holds no secret either: httpx
    # logs every request URL, bot token included, unless the pipeline quiets it.
    for secret in (TOKEN, TOKEN.split(":", 1)[1], deployed.password):
        assert secret not in output
    # The marts were built in the block's warehouse, not in an embedded fallback, and
    # the simulation's files went where the worker's environment said.
    with deployed.warehouse.connect() as conn:
        row = conn.execute(
            "select count(*) from marts.churn_weekly where week_end = %s", (AS_OF,)
        ).fetchone()
    assert row == (1,)
    assert any(deployed.data_dir.iterdir()), "nothing generated under CHURN_DATA_DIR"


def test_a_failing_deployment_run_sends_one_alert_without_secrets(deployed: Deployed) -> None:
    # In a deployment run a missing block is an error, never a fallback to the embedded
    # warehouse: it fails within seconds, in the flow itself, so the on_failure hook runs.
    before = len(deployed.telegram.messages)
    with prefect_client(deployed.api_url) as client:
        run = client.create_flow_run_from_deployment(
            deployed.deployment_id,
            parameters={
                "params": {
                    **declared_parameters()["params"],
                    **SMALL_SHOP,
                    "as_of": AS_OF.isoformat(),
                    "warehouse_block": "no-such-block",
                }
            },
        )

    output = start_worker_once(deployed)

    (final,) = wait_until_final(deployed, [str(run.id)])
    assert final.state_type.value == "FAILED", output[-4000:]
    new_messages = deployed.telegram.messages[before:]
    assert len(new_messages) == 1, [message.plain_text for message in new_messages]
    (alert,) = new_messages
    assert alert.method == "sendMessage" and alert.chat_id == CHAT_ID
    text = alert.text or ""
    assert "Churn pipeline failed" in text
    assert "warehouse connection" in text and "no-such-block" in text
    secret_half = TOKEN.split(":", 1)[1]
    for secret in (TOKEN, secret_half, deployed.password, quote(deployed.password, safe="")):
        assert secret not in text
        assert secret not in output
