"""Shared fixtures: a Prefect test server, a real PostgreSQL, fresh databases, blocks,
a fake Telegram Bot API server on 127.0.0.1, and the Docker deployment's runs.

PostgreSQL comes from TEST_DATABASE_URL when it is set (CI points it at the machine's
server); otherwise an embedded one (pgserver) is started for the session, so the suite
passes on a machine with nothing installed.

Runs never write into the source tree: the session points CHURN_DATA_DIR (generated
files, dbt's run folders) and CHURN_REPORTS_DIR at a temporary folder.
"""

from __future__ import annotations

import os

os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

import contextlib
import tempfile
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from churn.settings.environment import temporary_environment
from churn.settings.parameters import RunParameters
from churn.warehouse.connection import Warehouse, parse_warehouse_url
from tests.reliability import (
    AS_OF,
    FAST_DELIVERY_ENV,
    NEXT_WEEK,
    SHOP,
    Kind,
    ReliabilityCase,
    ReliabilityFigures,
    block_names,
    clone_database,
    output_environment,
    run_pipeline,
)
from tests.session_notes import DOCKER_DEPLOYMENT, NOTES_ENV, RELIABILITY, note, read_notes
from tests.telegram_fake import DEFAULT_CHAT_ID, DEFAULT_TOKEN, FakeTelegramServer

if TYPE_CHECKING:
    from tests.docker_deployment import DockerDeployment

NOTES_PATH = pytest.StashKey[Path]()


@pytest.fixture(scope="session", autouse=True)
def run_outputs_outside_the_tree(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Every run of the session writes its files under a temporary folder."""
    folder = tmp_path_factory.mktemp("run-outputs")
    with temporary_environment(output_environment(folder)):
        yield folder


@pytest.fixture(scope="session")
def prefect_test_server() -> Iterator[str]:
    """One Prefect server for the whole session (started by the first test that needs it)."""
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield PREFECT_API_URL.value()


@pytest.fixture(scope="session")
def postgres_admin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Warehouse]:
    """A PostgreSQL server to create test databases on (its `postgres` database)."""
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        yield parse_warehouse_url(url, origin="TEST_DATABASE_URL").with_database("postgres")
        return
    from churn.warehouse.embedded import embedded_warehouse, stop_embedded

    directory = tmp_path_factory.mktemp("embedded") / "pg"
    warehouse = embedded_warehouse(directory)
    yield warehouse.with_database("postgres")
    stop_embedded(directory)


def create_database(admin: Warehouse, label: str) -> Warehouse:
    name = f"churn_{label}_{uuid.uuid4().hex[:8]}"
    with admin.connect(autocommit=True) as conn:
        conn.execute(f'create database "{name}"')
    return admin.with_database(name, origin=f"test database {name}")


def drop_database(admin: Warehouse, warehouse: Warehouse) -> None:
    with contextlib.suppress(Exception), admin.connect(autocommit=True) as conn:
        conn.execute(f'drop database if exists "{warehouse.database}" with (force)')


@pytest.fixture
def make_warehouse(postgres_admin: Warehouse) -> Iterator[Callable[[str], Warehouse]]:
    """Create empty databases for one test; they are dropped afterwards."""
    created: list[Warehouse] = []

    def make(label: str = "test") -> Warehouse:
        warehouse = create_database(postgres_admin, label)
        created.append(warehouse)
        return warehouse

    yield make
    for warehouse in created:
        drop_database(postgres_admin, warehouse)


@pytest.fixture
def warehouse(make_warehouse: Callable[[str], Warehouse]) -> Warehouse:
    """One empty database for one test, dropped afterwards."""
    return make_warehouse("test")


def save_warehouse_block(warehouse: Warehouse, name: str) -> None:
    """Register a SqlAlchemyConnector block pointing at the warehouse."""
    from churn.warehouse.blocks import connector_for

    connector_for(warehouse).save(name, overwrite=True)


def save_telegram_block(
    name: str, base_url: str, token: str = DEFAULT_TOKEN, chat_id: str = DEFAULT_CHAT_ID
) -> None:
    """Register a TelegramBot block for a (fake) Bot API at `base_url`."""
    from blocks.telegram import TelegramBot

    TelegramBot(bot_token=token, chat_id=chat_id, api_base_url=base_url).save(name, overwrite=True)


def register_blocks(
    warehouse: Warehouse, server: FakeTelegramServer, label: str, token: str = DEFAULT_TOKEN
) -> dict[str, str]:
    """Blocks of fresh names for the warehouse and the fake chat; returns the names."""
    names = block_names(label)
    save_warehouse_block(warehouse, names["warehouse_block"])
    save_telegram_block(names["telegram_block"], server.base_url, token=token)
    return names


@pytest.fixture
def project_root() -> Path:
    return Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def docker_deployment(
    postgres_admin: Warehouse, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DockerDeployment]:
    """The Docker deployment built, pushed and run twice by a worker (a good week, then a
    failing one): set up once, shared by the Docker deployment and UI tests."""
    from tests.docker_deployment import docker_deployment_session

    base = tmp_path_factory.mktemp("deployment-docker")
    with docker_deployment_session(postgres_admin, base) as deployed:
        yield deployed


@pytest.fixture
def telegram_server() -> Iterator[FakeTelegramServer]:
    """A fake Telegram Bot API on 127.0.0.1 with one valid token and one chat."""
    with FakeTelegramServer() as server:
        yield server


# -- the reliability suite (tests/test_reliability_*.py) -------------------------------------


@pytest.fixture
def reliability(request: pytest.FixtureRequest) -> Iterator[Callable[[Kind], ReliabilityCase]]:
    """Declare what a reliability test tries; it records its outcome once its asserts pass."""
    cases: list[ReliabilityCase] = []

    def start(kind: Kind) -> ReliabilityCase:
        case = ReliabilityCase(kind, request.node.nodeid)
        cases.append(case)
        return case

    yield start
    for case in cases:
        note(RELIABILITY, [case.kind, case.test, case.outcome])


# -- the session: its groups of tests and its closing lines ----------------------------------

# Tests that share a session's expensive setup run in one process under pytest-xdist
# (`pytest -n 2`): the Docker deployment (built and run once for its own tests and the
# UI's) and the reliability suite's template warehouse; every other module is a group of
# its own, so its module fixtures are set up once.
SHARED_SETUP_GROUPS = {
    "test_deployment_docker.py": "docker-deployment",
    "test_ui.py": "docker-deployment",
}
# The longest groups start first and the quick ones fill in at the end, so that neither
# worker is left running a long module alone: the groups that take minutes (longest
# first, as measured in CI), then the others by how many slow tests they hold.
FIRST_GROUPS = (
    "docker-deployment",
    "reliability",
    "test_pipeline",
    "test_import_pipeline",
    "test_local_server",
    "test_deployment_local",
)


def group_of(test_file: str) -> str:
    """The group of a test module, from its path (as in a node id) or its name."""
    name = test_file.rsplit("/", 1)[-1]
    if name.startswith("test_reliability_"):
        return "reliability"
    return SHARED_SETUP_GROUPS.get(name, name.removesuffix(".py"))


def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object | None:
    """`-n N`: whole groups to a worker (pytest-xdist's own `loadgroup` needs a mark on
    every test and, with this pytest, does not apply it)."""
    if config.getoption("dist") != "load":
        return None  # another --dist asked for by name
    from xdist.scheduler import LoadScopeScheduling

    class GroupScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return group_of(nodeid.split("::", 1)[0])

    return GroupScheduling(config, log)


def pytest_configure(config: pytest.Config) -> None:
    """The controller (or the only process) opens the session's notes file; workers
    inherit its path through the environment."""
    if NOTES_ENV in os.environ and hasattr(config, "workerinput"):
        return
    handle, path = tempfile.mkstemp(prefix="churn-test-notes-", suffix=".jsonl")
    os.close(handle)
    os.environ[NOTES_ENV] = path
    config.stash[NOTES_PATH] = Path(path)


def pytest_unconfigure(config: pytest.Config) -> None:
    path = config.stash.get(NOTES_PATH, None)
    if path is not None:
        path.unlink(missing_ok=True)
        os.environ.pop(NOTES_ENV, None)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    slow = Counter(group_of(item.path.name) for item in items if item.get_closest_marker("slow"))

    def order(item: pytest.Item) -> tuple[int, int]:
        group = group_of(item.path.name)
        if group in FIRST_GROUPS:
            return (FIRST_GROUPS.index(group), 0)
        return (len(FIRST_GROUPS), -slow[group])

    items.sort(key=order)  # stable: a module's tests keep their order


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print the reliability figures when reliability tests ran, and what the Docker
    deployment's setup took and where the UI screenshots are when those tests ran."""
    notes = read_notes()
    if notes[RELIABILITY]:
        figures = ReliabilityFigures(
            [ReliabilityCase(*case) for case in notes[RELIABILITY]]  # type: ignore[misc]
        )
        terminalreporter.write_sep("=", "reliability figures")
        terminalreporter.write_line(figures.summary())
    if notes[DOCKER_DEPLOYMENT]:
        terminalreporter.write_sep("=", DOCKER_DEPLOYMENT)
        for line in notes[DOCKER_DEPLOYMENT]:
            terminalreporter.write_line(str(line))


@pytest.fixture(scope="session")
def reliability_output(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the reliability suite's runs write their files (CSV landings, dry runs)."""
    return tmp_path_factory.mktemp("reliability-output")


@pytest.fixture(scope="module")
def reliability_env(prefect_test_server: str, reliability_output: Path) -> Iterator[None]:
    """Flows run on the test server and write under a temporary folder; Telegram
    timeouts and backoffs are short."""
    with temporary_environment({**output_environment(reliability_output), **FAST_DELIVERY_ENV}):
        yield


@pytest.fixture(scope="session")
def reliability_template(
    prefect_test_server: str, postgres_admin: Warehouse, reliability_output: Path
) -> Iterator[Warehouse]:
    """A good week to copy: the suite's shop landed, built for AS_OF and reported (dry
    run), and the week after it (NEXT_WEEK) landed in raw but not built yet.

    Built once by the pipeline itself; tests work on copies (`reliability_warehouse`).
    """
    from flows.generation import generate_shop_activity

    warehouse = create_database(postgres_admin, "reliability_template")
    names = block_names("template")
    save_warehouse_block(warehouse, names["warehouse_block"])  # no Telegram block: dry run
    with temporary_environment(output_environment(reliability_output)):
        state = run_pipeline(names, AS_OF)
        assert state.is_completed(), state.message
        generate_shop_activity(
            RunParameters(as_of=NEXT_WEEK, warehouse_block=names["warehouse_block"], **SHOP)
        )
    yield warehouse
    drop_database(postgres_admin, warehouse)


@pytest.fixture(scope="session")
def reliability_database_name() -> str:
    """The name every copy of the template gets in this session, one copy at a time.

    dbt parses the whole project again whenever its connection profile changes, and a
    different database name is a different profile: one name keeps partial parsing
    (about 3 s saved on each dbt invocation here).
    """
    return f"churn_reliability_{uuid.uuid4().hex[:8]}"


@pytest.fixture
def reliability_warehouse(
    postgres_admin: Warehouse, reliability_template: Warehouse, reliability_database_name: str
) -> Iterator[Warehouse]:
    """A fresh copy of the reliability template for one test, dropped afterwards."""
    warehouse = clone_database(postgres_admin, reliability_template, reliability_database_name)
    yield warehouse
    drop_database(postgres_admin, warehouse)
