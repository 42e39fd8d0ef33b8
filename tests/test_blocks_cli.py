"""`python -m blocks` end to end: a real Prefect server, the command as a subprocess.

The server is the suite's session server when tests/conftest.py provides one
(`prefect_test_server`), else a local one named by PREFECT_API_URL, else one started
for this module (about 20 s here) with a temporary PREFECT_HOME. Every
test uses block names of its own, so tests neither depend on each other nor collide with
blocks that exist on a reused server.

Secrets in these tests are distinctive strings, so "never printed" is checked by looking
for them (raw and percent-encoded) in everything the command wrote.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from churn.settings.prefect_server import free_port, is_healthy, quiet_env, running_prefect_server
from churn.warehouse.connection import Warehouse
from tests.telegram_fake import FakeTelegramServer

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
SETTING_KEYS = ("WAREHOUSE_URL", "TELEGRAM_BOT_TOKEN", "TELEGRAM_CHAT_ID", "TELEGRAM_API_URL")

PASSWORD = "Pw@9f3k:zz"  # '@' and ':' must be percent-encoded in the URL
PASSWORD_IN_URL = "Pw%409f3k%3Azz"
TOKEN = "987654321:SeCrEt-Token_for_block_tests"
WAREHOUSE_SLUG = "sqlalchemy-connector"
TELEGRAM_SLUG = "telegram-bot"


def _quiet_env(**extra: str) -> dict[str, str]:
    """The environment for a subprocess: no stray pipeline settings, no telemetry."""
    return quiet_env(drop=SETTING_KEYS, **extra)


def _running_api_url(request: pytest.FixtureRequest) -> str | None:
    """A Prefect API that is already up: the suite's test server, or a local PREFECT_API_URL."""
    candidates: list[str] = []
    # tests/conftest.py may run one server for the whole session (prefect_test_harness,
    # a real HTTP server); reusing it saves starting another.
    with contextlib.suppress(pytest.FixtureLookupError):
        candidates.append(str(request.getfixturevalue("prefect_test_server")))
    given = os.environ.get("PREFECT_API_URL", "")
    if given.startswith(("http://127.0.0.1", "http://localhost")):
        candidates.append(given)
    return next((url.rstrip("/") for url in candidates if is_healthy(url.rstrip("/"))), None)


@pytest.fixture(scope="module")
def prefect_api_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A running Prefect API: one that is already up, or a server started for this module."""
    running = _running_api_url(request)
    if running is not None:
        yield running
        return

    with running_prefect_server(tmp_path_factory.mktemp("prefect-home")) as api_url:
        yield api_url


@dataclass
class Run:
    """One finished `python -m blocks` run."""

    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def assert_no_secret(self, *secrets: str) -> None:
        for secret in secrets:
            assert secret not in self.output, "a secret was printed"


@dataclass
class BlocksCommand:
    """Runs `python -m blocks` in a project folder of its own against the test server."""

    api_url: str
    folder: Path
    prefect_home: Path

    def write_env_file(self, text: str, name: str = ".env") -> Path:
        path = self.folder / name
        path.write_text(text)
        return path

    def run(self, *args: str, env: dict[str, str] | None = None) -> Run:
        pythonpath = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
        completed = subprocess.run(
            [sys.executable, "-m", "blocks", *args],
            cwd=self.folder,
            env=_quiet_env(
                PREFECT_API_URL=self.api_url,
                PREFECT_HOME=str(self.prefect_home),
                PYTHONPATH=pythonpath,
                **(env or {}),
            ),
            capture_output=True,
            text=True,
            timeout=180,
        )
        return Run(completed.returncode, completed.stdout, completed.stderr)


@pytest.fixture
def blocks_command(prefect_api_url: str, tmp_path: Path) -> BlocksCommand:
    folder = tmp_path / "project"
    folder.mkdir()
    home = tmp_path / "prefect-home"
    home.mkdir()
    return BlocksCommand(prefect_api_url, folder, home)


@pytest.fixture
def names() -> tuple[str, str]:
    """Fresh warehouse and telegram block names for one test."""
    suffix = uuid.uuid4().hex[:10]
    return f"wh-{suffix}", f"tg-{suffix}"


def read_block(api_url: str, name: str, slug: str) -> Any | None:
    """The saved block document (secrets included), or None if there is none."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: api_url}), get_client(sync_client=True) as client:
        try:
            return client.read_block_document_by_name(name, slug, include_secrets=True)
        except ObjectNotFound:
            return None


def count_blocks(api_url: str, name: str, slug: str) -> int:
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: api_url}), get_client(sync_client=True) as client:
        return sum(doc.name == name for doc in client.read_block_documents_by_type(slug))


def _env_file_text(
    warehouse_url: str = f"postgresql://churn:{PASSWORD_IN_URL}@db.internal:6543/shop",
    token: str = TOKEN,
    chat_id: str = "-1001234567890",
    api_url: str = "",
) -> str:
    return (
        "# written by test_blocks_cli\n"
        f"WAREHOUSE_URL={warehouse_url}\n"
        f"TELEGRAM_BOT_TOKEN={token}\n"
        f"TELEGRAM_CHAT_ID={chat_id}\n"
        f"TELEGRAM_API_URL={api_url}\n"
    )


def _closed_port() -> int:
    # Bound then released: nothing listens there for the next moments.
    return free_port()


# -- creating blocks


def test_blocks_are_created_from_the_env_file(
    blocks_command: BlocksCommand, names: tuple[str, str]
) -> None:
    warehouse, telegram = names
    blocks_command.write_env_file(_env_file_text(api_url="http://127.0.0.1:8081/bot"))

    run = blocks_command.run("--warehouse-block", warehouse, "--telegram-block", telegram)

    assert run.returncode == 0, run.output
    assert f"warehouse: saved SqlAlchemyConnector block '{warehouse}'" in run.stdout
    assert "churn@db.internal:6543/shop" in run.stdout
    assert f"telegram: saved TelegramBot block '{telegram}'" in run.stdout
    run.assert_no_secret(PASSWORD, PASSWORD_IN_URL, TOKEN)

    connector = read_block(blocks_command.api_url, warehouse, WAREHOUSE_SLUG)
    assert connector is not None
    info = connector.data["connection_info"]
    assert info["driver"] == "postgresql+psycopg"
    assert (info["host"], info["port"], info["username"], info["database"]) == (
        "db.internal",
        6543,
        "churn",
        "shop",
    )
    assert info["password"] == PASSWORD  # decoded from the URL, stored as a secret

    bot = read_block(blocks_command.api_url, telegram, TELEGRAM_SLUG)
    assert bot is not None
    assert bot.data["bot_token"] == TOKEN
    assert bot.data["chat_id"] == "-1001234567890"
    assert bot.data["api_base_url"] == "http://127.0.0.1:8081/bot"


def test_secrets_are_masked_in_the_saved_blocks(
    blocks_command: BlocksCommand, names: tuple[str, str]
) -> None:
    warehouse, telegram = names
    blocks_command.write_env_file(_env_file_text())
    assert (
        blocks_command.run("--warehouse-block", warehouse, "--telegram-block", telegram).returncode
        == 0
    )

    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with (
        temporary_settings({PREFECT_API_URL: blocks_command.api_url}),
        get_client(sync_client=True) as client,
    ):
        connector = client.read_block_document_by_name(
            warehouse, WAREHOUSE_SLUG, include_secrets=False
        )
        bot = client.read_block_document_by_name(telegram, TELEGRAM_SLUG, include_secrets=False)
    assert PASSWORD not in str(connector.data)
    assert TOKEN not in str(bot.data)


def test_running_twice_updates_the_same_blocks(
    blocks_command: BlocksCommand, names: tuple[str, str]
) -> None:
    warehouse, telegram = names
    args = ("--warehouse-block", warehouse, "--telegram-block", telegram)
    blocks_command.write_env_file(_env_file_text(chat_id="111"))

    first = blocks_command.run(*args)
    ids_after_first = (
        read_block(blocks_command.api_url, warehouse, WAREHOUSE_SLUG).id,
        read_block(blocks_command.api_url, telegram, TELEGRAM_SLUG).id,
    )
    second = blocks_command.run(*args)
    blocks_command.write_env_file(_env_file_text(chat_id="222"))
    third = blocks_command.run(*args)

    assert (first.returncode, second.returncode, third.returncode) == (0, 0, 0), third.output
    connector = read_block(blocks_command.api_url, warehouse, WAREHOUSE_SLUG)
    bot = read_block(blocks_command.api_url, telegram, TELEGRAM_SLUG)
    assert (connector.id, bot.id) == ids_after_first
    assert bot.data["chat_id"] == "222"
    assert count_blocks(blocks_command.api_url, warehouse, WAREHOUSE_SLUG) == 1
    assert count_blocks(blocks_command.api_url, telegram, TELEGRAM_SLUG) == 1


def test_environment_variables_override_the_env_file(
    blocks_command: BlocksCommand, names: tuple[str, str]
) -> None:
    warehouse, telegram = names
    blocks_command.write_env_file(_env_file_text(chat_id="111"))

    run = blocks_command.run(
        "--warehouse-block",
        warehouse,
        "--telegram-block",
        telegram,
        env={
            "TELEGRAM_CHAT_ID": "@churn_reports",
            "WAREHOUSE_URL": "postgresql://analyst@warehouse.example.com/marts",
        },
    )

    assert run.returncode == 0, run.output
    info = read_block(blocks_command.api_url, warehouse, WAREHOUSE_SLUG).data["connection_info"]
    assert (info["host"], info["port"], info["username"], info["database"]) == (
        "warehouse.example.com",
        5432,
        "analyst",
        "marts",
    )
    assert info.get("password") is None
    bot = read_block(blocks_command.api_url, telegram, TELEGRAM_SLUG)
    assert bot.data["chat_id"] == "@churn_reports"
    assert bot.data["bot_token"] == TOKEN  # not overridden: still the file's


def test_a_named_env_file_is_read(blocks_command: BlocksCommand, names: tuple[str, str]) -> None:
    warehouse, telegram = names
    path = blocks_command.write_env_file(_env_file_text(chat_id="333"), name="prod.env")

    run = blocks_command.run(
        "--env-file", str(path), "--warehouse-block", warehouse, "--telegram-block", telegram
    )

    assert run.returncode == 0, run.output
    assert read_block(blocks_command.api_url, telegram, TELEGRAM_SLUG).data["chat_id"] == "333"


def test_a_block_without_settings_is_skipped(
    blocks_command: BlocksCommand, names: tuple[str, str]
) -> None:
    warehouse, telegram = names
    blocks_command.write_env_file(
        f"WAREHOUSE_URL=postgresql://churn:{PASSWORD_IN_URL}@db.internal/shop\n"
        "TELEGRAM_BOT_TOKEN=\nTELEGRAM_CHAT_ID=\n"
    )

    run = blocks_command.run("--warehouse-block", warehouse, "--telegram-block", telegram)

    assert run.returncode == 0, run.output
    assert "telegram: skipped" in run.stdout
    assert f"saved SqlAlchemyConnector block '{warehouse}'" in run.stdout
    assert read_block(blocks_command.api_url, warehouse, WAREHOUSE_SLUG) is not None
    assert read_block(blocks_command.api_url, telegram, TELEGRAM_SLUG) is None
    run.assert_no_secret(PASSWORD, PASSWORD_IN_URL)


# -- bad input: exit 2, one line on stderr, nothing saved, no secret printed

BAD_INPUTS = {
    "malformed-url": {"WAREHOUSE_URL": f"postgresql://churn:{PASSWORD}/x@db.internal/shop"},
    "not-a-url": {"WAREHOUSE_URL": "db.internal:5432/shop"},
    "mysql-scheme": {"WAREHOUSE_URL": f"mysql://churn:{PASSWORD_IN_URL}@db.internal/shop"},
    "no-database": {"WAREHOUSE_URL": f"postgresql://churn:{PASSWORD_IN_URL}@db.internal:5432/"},
    "bad-port": {"WAREHOUSE_URL": f"postgresql://churn:{PASSWORD_IN_URL}@db.internal:54x2/shop"},
    "empty-chat-id": {"TELEGRAM_CHAT_ID": ""},
    "chat-id-not-an-id": {"TELEGRAM_CHAT_ID": "my chat"},
    "token-without-colon": {"TELEGRAM_BOT_TOKEN": "SeCrEt-Token_for_block_tests"},
    "token-with-letters-before-colon": {"TELEGRAM_BOT_TOKEN": "bot987:SeCrEt-Token"},
    "api-url-not-http": {"TELEGRAM_API_URL": "ftp://127.0.0.1:8081/bot"},
    "api-url-without-scheme": {"TELEGRAM_API_URL": "127.0.0.1:8081/bot"},
}


@pytest.mark.parametrize("overrides", BAD_INPUTS.values(), ids=BAD_INPUTS.keys())
def test_bad_input_is_rejected_before_anything_is_saved(
    blocks_command: BlocksCommand, names: tuple[str, str], overrides: dict[str, str]
) -> None:
    warehouse, telegram = names
    # The rest of the settings are valid, so a half-saved state would show.
    blocks_command.write_env_file(_env_file_text())

    run = blocks_command.run(
        "--warehouse-block", warehouse, "--telegram-block", telegram, env=overrides
    )

    assert run.returncode == 2, run.output
    error_lines = run.stderr.strip().splitlines()
    assert len(error_lines) == 1, run.stderr
    assert error_lines[0].startswith("python -m blocks: error: ")
    variable = next(iter(overrides))
    assert variable in error_lines[0]
    run.assert_no_secret(PASSWORD, PASSWORD_IN_URL, TOKEN, "SeCrEt-Token")
    assert read_block(blocks_command.api_url, warehouse, WAREHOUSE_SLUG) is None
    assert read_block(blocks_command.api_url, telegram, TELEGRAM_SLUG) is None


def test_nothing_configured_is_an_error(blocks_command: BlocksCommand) -> None:
    run = blocks_command.run()

    assert run.returncode == 2
    assert len(run.stderr.strip().splitlines()) == 1
    assert "nothing to save" in run.stderr


@pytest.mark.parametrize(
    "args",
    [("--warehouse-block", "Warehouse_1"), ("--env-file", "missing.env")],
    ids=["bad-block-name", "missing-env-file"],
)
def test_bad_arguments_give_one_line_and_exit_2(
    blocks_command: BlocksCommand, args: tuple[str, ...]
) -> None:
    blocks_command.write_env_file(_env_file_text())

    run = blocks_command.run(*args)

    assert run.returncode == 2, run.output
    assert len(run.stderr.strip().splitlines()) == 1, run.stderr
    assert run.stdout == ""


# -- --check


def test_check_reports_an_unreachable_warehouse_without_the_password(
    blocks_command: BlocksCommand, names: tuple[str, str]
) -> None:
    warehouse, telegram = names
    port = _closed_port()
    blocks_command.write_env_file(
        f"WAREHOUSE_URL=postgresql://churn:{PASSWORD_IN_URL}@127.0.0.1:{port}/shop\n"
    )
    assert blocks_command.run("--warehouse-block", warehouse).returncode == 0

    run = blocks_command.run(
        "--check", "--warehouse-block", warehouse, "--telegram-block", telegram
    )

    assert run.returncode == 1, run.output
    lines = run.stdout.strip().splitlines()
    warehouse_line = next(line for line in lines if line.startswith("warehouse block"))
    assert f"warehouse block '{warehouse}': FAILED" in warehouse_line
    assert f"127.0.0.1:{port}/shop" in warehouse_line
    telegram_line = next(line for line in lines if line.startswith("telegram block"))
    assert f"telegram block '{telegram}': ok, no such block: reports will be dry runs" in (
        telegram_line
    )
    run.assert_no_secret(PASSWORD, PASSWORD_IN_URL)


def test_check_proves_a_working_warehouse_and_a_missing_telegram_block_means_dry_runs(
    blocks_command: BlocksCommand, names: tuple[str, str], postgres_admin: Warehouse
) -> None:
    warehouse, telegram = names
    database_url = postgres_admin.display_url()  # trust authentication: no password
    saved = blocks_command.run("--warehouse-block", warehouse, env={"WAREHOUSE_URL": database_url})
    assert saved.returncode == 0, saved.output

    run = blocks_command.run(
        "--check", "--warehouse-block", warehouse, "--telegram-block", telegram
    )

    assert f"warehouse block '{warehouse}': ok, SELECT 1 on " in run.stdout, run.output
    # Telegram is optional: without its block the reports are dry runs, and that is fine.
    assert "reports will be dry runs" in run.stdout, run.output
    assert run.returncode == 0, run.output


@pytest.fixture
def fake_telegram() -> Iterator[FakeTelegramServer]:
    """A real HTTP server on 127.0.0.1 that answers like the Bot API (getMe and co.)."""
    with FakeTelegramServer(token=TOKEN, bot_username="churn_blocks_test_bot") as server:
        yield server


def test_check_proves_a_working_bot(
    blocks_command: BlocksCommand, names: tuple[str, str], fake_telegram: FakeTelegramServer
) -> None:
    warehouse, telegram = names
    saved = blocks_command.run(
        "--telegram-block",
        telegram,
        env={
            "TELEGRAM_BOT_TOKEN": TOKEN,
            "TELEGRAM_CHAT_ID": "424242",
            "TELEGRAM_API_URL": fake_telegram.base_url,
        },
    )
    assert saved.returncode == 0, saved.output

    run = blocks_command.run(
        "--check", "--warehouse-block", warehouse, "--telegram-block", telegram
    )

    assert f"telegram block '{telegram}': ok, bot @churn_blocks_test_bot" in run.stdout, run.output
    run.assert_no_secret(TOKEN)


def test_check_reports_a_rejected_token_without_the_token(
    blocks_command: BlocksCommand, names: tuple[str, str], fake_telegram: FakeTelegramServer
) -> None:
    warehouse, telegram = names
    other_token = "111222333:AnotherSeCrEt-that-the-server-rejects"
    saved = blocks_command.run(
        "--telegram-block",
        telegram,
        env={
            "TELEGRAM_BOT_TOKEN": other_token,
            "TELEGRAM_CHAT_ID": "424242",
            "TELEGRAM_API_URL": fake_telegram.base_url,
        },
    )
    assert saved.returncode == 0, saved.output

    run = blocks_command.run(
        "--check", "--warehouse-block", warehouse, "--telegram-block", telegram
    )

    assert run.returncode == 1
    assert f"telegram block '{telegram}': FAILED" in run.stdout, run.output
    run.assert_no_secret(other_token, "AnotherSeCrEt")
