"""The Docker deployment for real, set up once a session; its runs are shared by
tests/test_deployment_docker.py and tests/test_ui.py (the `docker_deployment` fixture).

As an operator would, each command a subprocess against a real `prefect server start`
(with its UI): create the `docker-pool` work pool, save the blocks with `python -m
blocks`, `prefect --no-prompt deploy --name weekly-churn-report` from the project folder
(the image is built from the Dockerfile and pushed to a registry), remove the local copy
of the image, then for each run `prefect worker start --pool docker-pool --run-once`,
which pulls the image and runs the flow in a container. Two runs: a good week whose
report goes to a fake Bot API, then the same week on raw data with a planted defect,
which a dbt test must stop.

The container uses the host's network (the worker picks it because the API is on
127.0.0.1), so the fake Bot API and PostgreSQL on 127.0.0.1 are reached as they are.
The warehouse is a fresh database owned by a role with a password, so that the checks
for leaked secrets look for a real one. While a run's container lives, a watcher keeps
its `docker inspect` and the user ids of its processes; the engine's events say whether
it was removed.

Needs a Docker engine, a registry (127.0.0.1:5000, or CHURN_TEST_REGISTRY) and a
PostgreSQL over TCP (TEST_DATABASE_URL); `.ci/docker-up` makes the first two on a bare
Debian machine. Roughly 5-10 minutes on two busy cores, most of it the image's build
(`uv sync` in a cold layer cache), its push and pull, and the two runs.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from churn.settings.prefect_server import PrefectServer, quiet_env, stop_process_group
from churn.warehouse.connection import Warehouse
from tests.availability import unavailable
from tests.conftest import create_database, drop_database
from tests.session_notes import DOCKER_DEPLOYMENT, note
from tests.telegram_fake import FakeTelegramServer, RecordedMessage

ROOT = Path(__file__).resolve().parents[1]
FLOW_NAME = "weekly-churn-report"
DEPLOYMENT = "weekly-churn-report"
POOL = "docker-pool"
REGISTRY = os.environ.get("CHURN_TEST_REGISTRY", "127.0.0.1:5000")
IMAGE_REPOSITORY = "churn-pipeline"
PIPELINE_SETTINGS = ("WAREHOUSE_URL", "TELEGRAM_BOT_TOKEN", "TELEGRAM_CHAT_ID", "TELEGRAM_API_URL")

# Distinctive secrets, so "never shown" is checked by looking for them.
TOKEN = "777888999:DockerTest-SeCrEt_token"
CHAT_ID = "-1007777777777"
PASSWORD = "Dck3r-SeCrEt-pw"

# A small shop, so the run takes seconds, not minutes; the rest is the deployment's.
AS_OF = dt.date(2026, 11, 23)
SMALL_SHOP = {"customers": 600, "products": 50, "history_days": 150}
# The failed run: one order landed twice; the raw checks' uniqueness test stops the run.
DEFECT_SQL = (
    "insert into raw.orders select * from raw.orders "
    "where order_id = (select min(order_id) from raw.orders)"
)
FAILING_CHECK = "source_unique_shop_orders_order_id"

COMMAND_TIMEOUT_SECONDS = 180
DEPLOY_TIMEOUT_SECONDS = 1200  # a cold build and push: 3-6 minutes on two busy cores
WORKER_TIMEOUT_SECONDS = 900
RUN_LABEL = "io.prefect.flow-run-id"


@dataclass
class ContainerRecord:
    """What was seen of one flow run's container."""

    id: str | None = None
    inspect: dict[str, Any] | None = None  # `docker inspect` while it ran
    # (UID, command) of every process seen in it while it ran (`docker top`).
    processes: set[tuple[str, str]] = field(default_factory=set)
    events: list[dict[str, Any]] = field(default_factory=list)  # its engine events
    present_after: bool = True  # still listed (`docker ps -a`) after the worker exited

    @property
    def actions(self) -> list[str]:
        return [event.get("Action", "") for event in self.events]


@dataclass(frozen=True)
class WorkerRun:
    """One flow run of the deployment, run by `prefect worker start --run-once`."""

    flow_run_id: str
    flow_run: Any  # prefect's FlowRun, in its final state
    worker_log: str
    container: ContainerRecord
    image_events: list[dict[str, Any]]  # the engine's image events meanwhile (pulls)
    seconds: float


@dataclass(frozen=True)
class DockerDeployment:
    """What the session's setup made and saw."""

    api_url: str
    ui_url: str
    deployment_id: str
    image: str  # registry/churn-pipeline:tag
    deploy_output: str
    deploy_events: list[dict[str, Any]]  # the engine's container events during the build
    registry_tags: list[str]
    local_copy_removed: bool
    image_probe: str  # what a shell in the image said about itself
    warehouse: Warehouse  # the deployment's own login (role with PASSWORD)
    telegram: FakeTelegramServer
    report_messages: list[RecordedMessage]  # what the chat got from the good run
    completed: WorkerRun
    failed: WorkerRun
    timings: dict[str, float]

    @property
    def secrets(self) -> tuple[str, ...]:
        return (TOKEN, TOKEN.split(":", 1)[1], PASSWORD, quote(PASSWORD, safe=""))


class Timer:
    """Prints how long each step took (shown with -s) and keeps the figures."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def summary(self) -> str:
        return "docker deployment setup: " + ", ".join(
            f"{label} {seconds:.0f} s" for label, seconds in self.seconds.items()
        )

    @contextlib.contextmanager
    def __call__(self, label: str) -> Iterator[None]:
        started = time.monotonic()
        try:
            yield
        finally:
            self.seconds[label] = time.monotonic() - started
            print(f"[deployment-docker] {label}: {self.seconds[label]:.1f} s", flush=True)


def docker_client() -> Any:
    import docker

    return docker.from_env(timeout=300)


def check_requirements(postgres_admin: Warehouse) -> None:
    """Skip (fail under CI) with the reason when the engine, registry or database is missing."""
    if postgres_admin.host.startswith("/"):
        unavailable(
            "the Docker deployment test needs a PostgreSQL the containers reach over TCP: "
            "set TEST_DATABASE_URL (e.g. postgresql://postgres@127.0.0.1:5432/postgres)"
        )
    problem = None  # said outside the except blocks: no chained tracebacks
    try:
        import docker

        docker.from_env(timeout=10).ping()
    except Exception as error:
        problem = (
            f"no Docker engine answers ({type(error).__name__}: {error}); "
            "`.ci/docker-up STATE_DIR CACHE_DIR` starts one (README, Deployment)"
        )
    if problem is None:
        try:
            with urllib.request.urlopen(f"http://{REGISTRY}/v2/", timeout=5):
                pass
        except (urllib.error.URLError, OSError) as error:
            problem = (
                f"no image registry answers at http://{REGISTRY}/v2/ ({error}); "
                "`.ci/docker-up` starts one, CHURN_TEST_REGISTRY names another"
            )
    if problem is not None:
        unavailable(problem)


def prefect(*args: str) -> list[str]:
    return [sys.executable, "-m", "prefect", *args]


@contextlib.contextmanager
def prefect_client(api_url: str) -> Iterator[Any]:
    """A synchronous Prefect client talking to the session's server."""
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: api_url}), get_client(sync_client=True) as client:
        yield client


def registry_tags() -> list[str]:
    url = f"http://{REGISTRY}/v2/{IMAGE_REPOSITORY}/tags/list"
    with urllib.request.urlopen(url, timeout=10) as response:
        return list(json.load(response).get("tags") or [])


def engine_events(client: Any, since: float, until: float, **filters: Any) -> list[dict[str, Any]]:
    """The engine's events between two moments (it keeps the recent ones in memory)."""
    return list(client.events(since=int(since), until=int(until) + 1, decode=True, filters=filters))


class ContainerWatch(threading.Thread):
    """Polls for a flow run's container and records it while it runs.

    The container is removed as soon as it exits (auto_remove), so `docker inspect` and
    `docker top` can only be read while the run is going.
    """

    def __init__(self, client: Any, flow_run_id: str) -> None:
        super().__init__(name=f"watch-{flow_run_id[:8]}", daemon=True)
        self.client = client
        self.flow_run_id = flow_run_id
        self.record = ContainerRecord()
        self.stopping = threading.Event()

    def run(self) -> None:
        import docker.errors

        while not self.stopping.is_set():
            try:
                found = self.client.containers.list(
                    all=True, filters={"label": f"{RUN_LABEL}={self.flow_run_id}"}
                )
                for container in found:
                    self.record.id = container.id
                    if container.status != "running":
                        continue
                    if self.record.inspect is None:
                        self.record.inspect = container.attrs
                    # The engine filters `ps` by the PID column, so it must be there.
                    top = container.top(ps_args="-eo pid,uid,args")
                    for _pid, uid, *command in top.get("Processes") or []:
                        self.record.processes.add((uid, " ".join(command)))
            except docker.errors.DockerException:
                pass  # it ended between two calls
            self.stopping.wait(1.0)

    def stop(self) -> ContainerRecord:
        self.stopping.set()
        self.join(timeout=30)
        return self.record


class Setup:
    """The steps of the session's setup, each timed."""

    def __init__(self, base: Path, server: PrefectServer, timer: Timer) -> None:
        self.base = base
        self.server = server
        self.timer = timer
        self.client_home = base / "client-home"
        self.worker_dir = base / "worker"
        for path in (self.client_home, self.worker_dir):
            path.mkdir(parents=True, exist_ok=True)

    def env(self, **extra: str) -> dict[str, str]:
        return quiet_env(
            drop=PIPELINE_SETTINGS,
            PREFECT_API_URL=self.server.api_url,
            PREFECT_HOME=str(self.client_home),
            **extra,
        )

    def run(
        self,
        args: list[str],
        *,
        cwd: Path,
        label: str | None = None,
        timeout: float = COMMAND_TIMEOUT_SECONDS,
        **env: str,
    ) -> str:
        """Run a command against the server; fail with its output if it fails or hangs."""
        label = label or " ".join(
            arg for arg in args[2:6] if not arg.startswith("-") and "/" not in arg
        )
        log_path = self.base / f"{label.replace(' ', '-')}-{time.monotonic_ns()}.log"
        timed_out = False
        with self.timer(label), log_path.open("wb") as log:
            # Its own session: on a timeout, whatever it started stops with it.
            process = subprocess.Popen(
                args,
                cwd=cwd,
                env=self.env(**env),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                timed_out = True
            finally:
                stop_process_group(process, timeout=20)
        output = log_path.read_text(errors="replace")
        if timed_out or process.returncode != 0:
            outcome = f"ran over {timeout:.0f} s" if timed_out else f"exited {process.returncode}"
            pytest.fail(f"{label} {outcome}:\n{output[-5000:]}")
        return output

    def worker_run(self, client: Any, flow_run_id: str, label: str) -> WorkerRun:
        """`prefect worker start --pool docker-pool --run-once`, watching the container."""
        watch = ContainerWatch(client, flow_run_id)
        watch.start()
        since = time.time()
        started = time.monotonic()
        try:
            output = self.run(
                prefect("worker", "start", "--pool", POOL, "--run-once"),
                cwd=self.worker_dir,
                label=label,
                timeout=WORKER_TIMEOUT_SECONDS,
            )
        finally:
            record = watch.stop()
        seconds = time.monotonic() - started
        flow_run = wait_until_final(self.server.api_url, flow_run_id)
        until = time.time()
        record.events = engine_events(
            client, since, until, type="container", label=f"{RUN_LABEL}={flow_run_id}"
        )
        record.present_after = bool(
            client.containers.list(all=True, filters={"label": f"{RUN_LABEL}={flow_run_id}"})
        )
        return WorkerRun(
            flow_run_id=flow_run_id,
            flow_run=flow_run,
            worker_log=output,
            container=record,
            image_events=engine_events(client, since, until, type="image"),
            seconds=seconds,
        )


def wait_until_final(api_url: str, flow_run_id: str, timeout: float = 60) -> Any:
    """The run once it is in a final state (the worker may return just before the last
    state is recorded)."""
    deadline = time.monotonic() + timeout
    while True:
        with prefect_client(api_url) as client:
            run = client.read_flow_run(flow_run_id)
        if run.state is not None and run.state.is_final():
            return run
        if time.monotonic() > deadline:
            pytest.fail(f"flow run {flow_run_id} not final after {timeout:.0f} s: {run.state}")
        time.sleep(1)


def declared_parameters() -> dict[str, Any]:
    """The deployment's `params` as prefect.yaml declares them."""
    import yaml

    config = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    (spec,) = [d for d in config["deployments"] if d["name"] == DEPLOYMENT]
    return dict(spec["parameters"]["params"])


def run_parameters(**overrides: Any) -> dict[str, Any]:
    """A run's `params`: the deployment's, with the small shop and the fixed week.

    A run's `params` replace the deployment's whole, so the run restates them.
    """
    return {**declared_parameters(), **SMALL_SHOP, "as_of": AS_OF.isoformat(), **overrides}


def create_login(admin: Warehouse, warehouse: Warehouse) -> Warehouse:
    """A role with a password that owns the (empty) database: the deployment's login."""
    role = f"{warehouse.database}_owner"
    with admin.connect(autocommit=True) as conn:
        conn.execute(f"create role \"{role}\" login password '{PASSWORD}'")
        # The owner of a database owns its schema public too (PostgreSQL 15+).
        conn.execute(f'alter database "{warehouse.database}" owner to "{role}"')
    return replace(warehouse, user=role, password=PASSWORD)


def drop_login(admin: Warehouse, role: str) -> None:
    """Drop the role (after its database: it owns nothing else)."""
    with admin.connect(autocommit=True) as conn:
        conn.execute(f'drop role if exists "{role}"')


def warehouse_url(warehouse: Warehouse) -> str:
    return (
        f"postgresql://{quote(warehouse.user, safe='')}:{quote(PASSWORD, safe='')}"
        f"@{warehouse.host}:{warehouse.port}/{warehouse.database}"
    )


# What the image holds: its user, folder, dbt's parse, and none of the local state.
IMAGE_PROBE = (
    "id -un; id -u; pwd; command -v python; "
    'test -f "$CHURN_DATA_DIR/dbt/partial_parse.msgpack" && echo parsed; '
    "for path in .env .venv .data .git tests reports dbt/target dbt/logs; do "
    "  test -e $path && echo present:$path; done; "
    # compiled at build time: a run neither compiles (slow) nor writes into the image
    "python -c 'import importlib.util, os, prefect, flows.main as main; "
    "print(min(os.path.exists(importlib.util.cache_from_source(module.__file__)) "
    'for module in (prefect, main)) and "compiled" or "not-compiled")\'; '
    "python -c 'import flows.main, blocks, churn, prefect; print(prefect.__version__)'"
)


@contextlib.contextmanager
def docker_deployment_session(postgres_admin: Warehouse, base: Path) -> Iterator[DockerDeployment]:
    """Set everything up, run both flow runs, yield what was seen; always clean up."""
    check_requirements(postgres_admin)
    client = docker_client()
    timer = Timer()
    # Services on, for the task run recorder: without it no task run reaches the UI. The
    # scheduler off: the tests make the runs they want, and a run the schedule made due
    # could be picked up by the worker.
    server = PrefectServer(
        base / "server-home",
        services=True,
        ui=True,
        settings={"PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED": "false"},
    )
    database: Warehouse | None = None
    image: str | None = None
    try:
        server.start()
        database = create_database(postgres_admin, "docker")
        warehouse = create_login(postgres_admin, database)
        with FakeTelegramServer(token=TOKEN, chats=(CHAT_ID,)) as telegram:
            with timer("prefect server start (with UI)"):
                server.wait_until_healthy()
            setup = Setup(base, server, timer)
            setup.run(prefect("work-pool", "create", POOL, "--type", "docker"), cwd=base)

            # The blocks CLI, from a folder with its own .env, as operators use it.
            blocks_dir = base / "blocks"
            blocks_dir.mkdir()
            (blocks_dir / ".env").write_text(
                f"WAREHOUSE_URL={warehouse_url(warehouse)}\n"
                f"TELEGRAM_BOT_TOKEN={TOKEN}\n"
                f"TELEGRAM_CHAT_ID={CHAT_ID}\n"
                f"TELEGRAM_API_URL={telegram.base_url}\n"
            )
            saved = setup.run(
                [sys.executable, "-m", "blocks"], cwd=blocks_dir, PYTHONPATH=str(ROOT)
            )
            assert "warehouse: saved" in saved and "telegram: saved" in saved, saved

            tag = f"test-{uuid.uuid4().hex[:8]}"
            prefect_yaml_before = (ROOT / "prefect.yaml").read_bytes()
            deploy_since = time.time()
            deploy_output = setup.run(
                prefect("--no-prompt", "deploy", "--name", DEPLOYMENT),
                cwd=ROOT,
                timeout=DEPLOY_TIMEOUT_SECONDS,
                CHURN_IMAGE_REGISTRY=f"{REGISTRY}/",
                CHURN_IMAGE_TAG=tag,
                # Builds here have no bridge network; the host's works on any engine.
                CHURN_BUILD_NETWORK=os.environ.get("CHURN_BUILD_NETWORK", "host"),
            )
            deploy_events = engine_events(client, deploy_since, time.time(), type="container")
            # --no-prompt must leave prefect.yaml (shared with other work) untouched.
            assert (ROOT / "prefect.yaml").read_bytes() == prefect_yaml_before
            image = f"{REGISTRY}/{IMAGE_REPOSITORY}:{tag}"
            tags = registry_tags()

            # The worker must get the image from the registry, not from the build.
            import docker.errors

            with timer("remove the local image"):
                client.images.remove(image)
            try:
                client.images.get(image)
                removed = False
            except docker.errors.ImageNotFound:
                removed = True

            with prefect_client(server.api_url) as api:
                deployment = api.read_deployment_by_name(f"{FLOW_NAME}/{DEPLOYMENT}")
            deployment_id = str(deployment.id)

            # The good week: `prefect deployment run`, as an operator starts one.
            started = setup.run(
                prefect(
                    "deployment", "run", f"{FLOW_NAME}/{DEPLOYMENT}",
                    "--param", f"params={json.dumps(run_parameters())}",
                ),
                cwd=setup.worker_dir,
            )  # fmt: skip
            first = re.search(r"UUID:\s*([0-9a-f-]{36})", started)
            assert first is not None, started
            completed = setup.worker_run(client, first.group(1), "worker run (pulls the image)")
            report_messages = telegram.messages

            with timer("image probe"):
                image_probe = client.containers.run(
                    image, ["sh", "-c", IMAGE_PROBE], remove=True, network_mode="host"
                ).decode(errors="replace")

            # The same week again, on raw data that someone else landed with a defect.
            with warehouse.connect(autocommit=True) as conn:
                conn.execute(DEFECT_SQL)
            with prefect_client(server.api_url) as api:
                second = api.create_flow_run_from_deployment(
                    deployment_id, parameters={"params": run_parameters(source="raw")}
                )
            failed = setup.worker_run(client, str(second.id), "worker run (a dbt test fails)")

            note(DOCKER_DEPLOYMENT, timer.summary())
            yield DockerDeployment(
                api_url=server.api_url,
                ui_url=server.ui_url,
                deployment_id=deployment_id,
                image=image,
                deploy_output=deploy_output,
                deploy_events=deploy_events,
                registry_tags=tags,
                local_copy_removed=removed,
                image_probe=image_probe,
                warehouse=warehouse,
                telegram=telegram,
                report_messages=report_messages,
                completed=completed,
                failed=failed,
                timings=dict(timer.seconds),
            )
    finally:
        started = time.monotonic()
        server.stop()
        if image is not None:
            with contextlib.suppress(Exception):
                client.images.remove(image, force=True)
        if database is not None:
            drop_database(postgres_admin, database)
            drop_login(postgres_admin, f"{database.database}_owner")
        client.close()
        note(DOCKER_DEPLOYMENT, f"docker deployment teardown: {time.monotonic() - started:.0f} s")
