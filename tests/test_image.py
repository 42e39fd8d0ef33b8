"""The Docker deployment's image, built for real from the Dockerfile, runs the pipeline.

No Docker engine here: buildah builds the Dockerfile (chroot isolation, vfs storage in a
temporary folder) on a Debian bookworm base made with debootstrap, since base images
cannot be pulled (see tests/buildah.py). The Debian base is cached between runs under
~/.cache/churn-pipeline; the project image is built in the test, every time.

The flow then runs INSIDE the image, as the image's unprivileged user in its WORKDIR,
against a real Prefect server, the test PostgreSQL and a fake Bot API, all on the host:
chroot isolation shares the host's network, so 127.0.0.1 in the container is the host.
The blocks are registered from inside the image with `python -m blocks`, as an operator
would against a remote server. Roughly 4-8 minutes, most of it `uv sync` in the build.

Skips (with the reason printed) without buildah or debootstrap, when not root, or
without a TCP PostgreSQL in TEST_DATABASE_URL.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest

from churn.settings.prefect_server import PrefectServer
from churn.warehouse.connection import Warehouse
from tests.buildah import HOST_CA_BUNDLE, Buildah, debian_rootfs, missing_requirements
from tests.conftest import create_database, drop_database
from tests.telegram_fake import FakeTelegramServer

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
BASE_IMAGE = "localhost/churn-base-python311"
IMAGE = "localhost/churn-pipeline:test"
IMAGE_USER_ID = "10001"  # the Dockerfile's `churn` user
IMAGE_WORKDIR = "/opt/churn"  # also the Docker deployment's pull step directory

TOKEN = "444555666:ImageTest-SeCrEt_token"
CHAT_ID = "-1005555555555"
AS_OF = dt.date(2026, 11, 23)
SMALL_SHOP = ("--customers", "600", "--products", "50", "--history-days", "150")
FLOW_TIMEOUT_SECONDS = 900


@contextlib.contextmanager
def timed(label: str) -> Iterator[None]:
    """Print how long a step took (shown with -s): where this module's minutes go."""
    started = time.monotonic()
    try:
        yield
    finally:
        print(f"[image] {label}: {time.monotonic() - started:.1f} s")


@pytest.fixture(scope="module")
def buildah(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Buildah]:
    """buildah with a storage of its own, removed with everything in it afterwards."""
    reason = missing_requirements()
    if reason is not None:
        print(f"test_image skipped: {reason}")
        pytest.skip(reason)
    tool = Buildah(tmp_path_factory.mktemp("buildah") / "storage")
    try:
        yield tool
    finally:
        with timed("remove images and storage"):
            tool.destroy()


@pytest.fixture(scope="module")
def prefect_server(
    buildah: Buildah, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PrefectServer]:
    """A Prefect server on the host, started but not yet waited for (see `image`)."""
    server = PrefectServer(tmp_path_factory.mktemp("image-prefect")).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def image(
    buildah: Buildah, prefect_server: PrefectServer, tmp_path_factory: pytest.TempPathFactory
) -> str:
    """The project image, built from the Dockerfile on the Debian base.

    Asks for `prefect_server` only so that the server's startup (15-45 s of migrations)
    runs during the build instead of after it.
    """
    with timed("debian base (debootstrap, cached)"):
        rootfs = debian_rootfs()
    with timed("base image"):
        buildah.build_base_image(rootfs, BASE_IMAGE, tmp_path_factory.mktemp("base"))
    with timed("buildah bud Dockerfile"):
        buildah.build(
            ROOT,
            IMAGE,
            containerfile=ROOT / "Dockerfile",
            build_args={"BASE_IMAGE": BASE_IMAGE},
            # pip and uv inside the build reach the package index through the same TLS
            # interception as the host: lend them the host's CA bundle (read-only, never
            # copied into a layer).
            volumes=[f"{HOST_CA_BUNDLE}:/etc/ssl/certs/ca-certificates.crt:ro"],
        )
    return IMAGE


@pytest.fixture(scope="module")
def container(buildah: Buildah, image: str) -> Iterator[str]:
    with timed("buildah from"):
        name = buildah.from_image(image)
    try:
        yield name
    finally:
        buildah.rm(name)


@dataclass(frozen=True)
class Services:
    """What the containerised run talks to, all on the host's 127.0.0.1."""

    api_url: str
    warehouse: Warehouse
    telegram: FakeTelegramServer


@pytest.fixture(scope="module")
def services(prefect_server: PrefectServer, postgres_admin: Warehouse) -> Iterator[Services]:
    if postgres_admin.host.startswith("/"):
        pytest.skip(
            "needs a PostgreSQL reachable over TCP from the container: set TEST_DATABASE_URL "
            "(e.g. postgresql://postgres@127.0.0.1:5432/postgres)"
        )
    with timed("prefect server healthy (after the build)"):
        api_url = prefect_server.wait_until_healthy()
    warehouse = create_database(postgres_admin, "image")
    try:
        with FakeTelegramServer(token=TOKEN, chats=(CHAT_ID,)) as telegram:
            yield Services(api_url, warehouse, telegram)
    finally:
        drop_database(postgres_admin, warehouse)


def warehouse_url(warehouse: Warehouse) -> str:
    auth = quote(warehouse.user, safe="")
    if warehouse.password:
        auth += ":" + quote(warehouse.password, safe="")
    return f"postgresql://{auth}@{warehouse.host}:{warehouse.port}/{warehouse.database}"


def output_of(completed: subprocess.CompletedProcess[str]) -> str:
    """The end of a command's output, for assertion messages."""
    return f"exit {completed.returncode}\n{completed.stdout[-4000:]}\n{completed.stderr[-4000:]}"


def test_the_image_runs_as_its_own_user_with_the_code_but_no_local_state(
    buildah: Buildah, container: str
) -> None:
    probe = buildah.run_in(
        container,
        [
            "sh", "-c",
            "id -u; pwd; command -v python; "
            "test -f $CHURN_DATA_DIR/dbt/partial_parse.msgpack && echo parsed; "
            "for path in .env .venv .data tests reports dbt/target dbt/logs; do "
            "  test -e $path && echo present:$path; done; "
            "python -c 'import flows.main, blocks, churn, prefect; print(prefect.__version__)'",
        ],
        timeout=300,
    )  # fmt: skip
    assert probe.returncode == 0, output_of(probe)
    lines = probe.stdout.split()
    assert lines[:3] == [IMAGE_USER_ID, IMAGE_WORKDIR, "/opt/venv/bin/python"], lines
    # dbt's parse was made at build time, so runs start without a full parse.
    assert "parsed" in lines
    # .dockerignore kept secrets (.env) and local state out of the build context.
    assert not [line for line in lines if line.startswith("present:")], lines
    assert lines[-1].startswith("3."), lines


def test_the_flow_runs_inside_the_image_and_the_report_reaches_the_chat(
    buildah: Buildah, container: str, services: Services
) -> None:
    env = {"PREFECT_API_URL": services.api_url}

    # chroot isolation makes no network namespace: the host's 127.0.0.1 is the
    # container's. Say so plainly if that ever changes, rather than time out later.
    port = services.telegram.base_url.split(":")[2].split("/")[0]
    reach = buildah.run_in(
        container,
        ["python", "-c", f"import socket; socket.create_connection(('127.0.0.1', {port}), 5)"],
        timeout=120,
    )
    assert reach.returncode == 0, (
        f"the container cannot reach the host's 127.0.0.1:\n{output_of(reach)}"
    )

    with timed("python -m blocks (in the image)"):
        saved = buildah.run_in(
            container,
            ["python", "-m", "blocks"],
            env={
                **env,
                "WAREHOUSE_URL": warehouse_url(services.warehouse),
                "TELEGRAM_BOT_TOKEN": TOKEN,
                "TELEGRAM_CHAT_ID": CHAT_ID,
                "TELEGRAM_API_URL": services.telegram.base_url,
            },
            timeout=300,
        )
    assert saved.returncode == 0, output_of(saved)
    assert "warehouse: saved" in saved.stdout and "telegram: saved" in saved.stdout
    assert TOKEN not in saved.stdout + saved.stderr

    with timed("python flows/main.py (in the image)"):
        run = buildah.run_in(
            container,
            ["python", "flows/main.py", "--as-of", AS_OF.isoformat(), *SMALL_SHOP,
             "--locale", "pt_BR"],
            env=env,
            timeout=FLOW_TIMEOUT_SECONDS,
        )  # fmt: skip
    assert run.returncode == 0, output_of(run)
    assert TOKEN not in run.stdout + run.stderr

    messages = services.telegram.messages
    methods = [message.method for message in messages]
    assert methods[0] == "sendPhoto" and "sendMessage" in methods, methods
    assert {message.chat_id for message in messages} == {CHAT_ID}
    # The report was built from the blocks' warehouse, not from an embedded fallback.
    with services.warehouse.connect() as conn:
        weeks = conn.execute(
            "select count(*) from marts.churn_weekly where week_end = %s", (AS_OF,)
        ).fetchone()
    assert weeks is not None and weeks[0] == 1
    # The customer model ran inside the image too: SciPy, nothing compiled at run time.
    with services.warehouse.connect() as conn:
        fit = conn.execute(
            "select status from prediction.model_fits where as_of_date = %s", (AS_OF,)
        ).fetchall()
    assert fit == [("converged",)]
    text = "\n".join(m.plain_text for m in messages if m.method == "sendMessage")
    assert "Previsão de evasão" in text and "Previsão indisponível" not in text
