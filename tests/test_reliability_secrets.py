"""Secrets: neither the bot token nor the warehouse password shows up anywhere.

One good run, one run stopped by a bad raw row (it sends the failure alert) and one
delivery refused for a wrong token, all with recognisable secrets (made up per session,
so no file can hold them from before). Then every place a secret could leak is read:
this process's stdout and stderr, the runs' Prefect logs and artifacts read back through
the API, the messages at the fake chat, the exceptions, the delivery ledger, and every
file under the project folder and the runs' data and report folders.
"""

from __future__ import annotations

import dataclasses
import os
import traceback
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import pytest

from churn.settings import RunParameters
from churn.warehouse.connection import Warehouse
from flows.reporting import send_churn_report
from tests.reliability import (
    NEXT_WEEK,
    Kind,
    ReliabilityCase,
    execute,
    read_run_records,
    run_pipeline,
    state_error,
)
from tests.telegram_fake import FakeTelegramServer

from .conftest import register_blocks, save_telegram_block

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("reliability_env")]

ROOT = Path(__file__).resolve().parent.parent
SKIPPED_FOLDERS = {".venv", ".git"}

TOKEN_SECRET = f"SECRET-TOKEN-{uuid.uuid4().hex[:12]}"
TOKEN = f"987654321:{TOKEN_SECRET}"
WRONG_TOKEN_SECRET = f"SECRET-WRONG-{uuid.uuid4().hex[:12]}"
WRONG_TOKEN = f"987654321:{WRONG_TOKEN_SECRET}"
PASSWORD = f"pw-SECRET-5a1t-{uuid.uuid4().hex[:8]}"  # trust auth accepts any password
SECRETS = (TOKEN, TOKEN_SECRET, WRONG_TOKEN, WRONG_TOKEN_SECRET, PASSWORD)


def leaks(texts: Iterable[str]) -> list[str]:
    """Each secret found in the texts, with a little context."""
    found = []
    for text in texts:
        for secret in SECRETS:
            at = text.find(secret)
            if at >= 0:
                found.append(f"{secret!r} in ...{text[max(0, at - 80) : at + 40]!r}...")
    return found


def files_under(folder: Path) -> Iterator[Path]:
    for directory, subdirectories, files in os.walk(folder):
        subdirectories[:] = [name for name in subdirectories if name not in SKIPPED_FOLDERS]
        for name in files:
            path = Path(directory, name)
            if path.is_file() and not path.is_symlink():
                yield path


def files_holding_secrets(folders: Iterable[Path]) -> list[str]:
    """Files whose bytes contain a secret (read in chunks: the folders hold databases)."""
    needles = [secret.encode() for secret in SECRETS]
    overlap = max(len(needle) for needle in needles)
    found = []
    for folder in folders:
        for path in files_under(folder):
            try:
                with path.open("rb") as file:
                    tail = b""
                    while chunk := file.read(16 * 1024 * 1024):
                        window = tail + chunk
                        if any(needle in window for needle in needles):
                            found.append(str(path))
                            break
                        tail = window[-overlap:]
            except OSError:  # removed or locked by a process running alongside
                continue
    return found


@pytest.fixture
def telegram_server() -> Iterator[FakeTelegramServer]:
    with FakeTelegramServer(token=TOKEN) as server:
        yield server


def test_no_secret_appears_in_output_logs_artifacts_alerts_errors_or_files(
    reliability_warehouse: Warehouse,
    telegram_server: FakeTelegramServer,
    reliability_output: Path,
    capfd: pytest.CaptureFixture[str],
    reliability: Callable[[Kind], ReliabilityCase],
) -> None:
    case = reliability("fault")
    warehouse = dataclasses.replace(reliability_warehouse, password=PASSWORD)
    names = register_blocks(warehouse, telegram_server, "secrets", token=TOKEN)
    wrong_token_block = f"{names['telegram_block']}-wrong"
    save_telegram_block(wrong_token_block, telegram_server.base_url, token=WRONG_TOKEN)

    good = run_pipeline(names, NEXT_WEEK)
    assert good.is_completed(), good.message
    execute(warehouse, "insert into raw.orders select * from raw.orders order by order_id limit 1")
    bad_row = run_pipeline(names, NEXT_WEEK, source="raw")
    bad_row_error = state_error(bad_row)
    wrong_token = send_churn_report(
        RunParameters(
            as_of=NEXT_WEEK,
            warehouse_block=names["warehouse_block"],
            telegram_block=wrong_token_block,
            resend=True,
        ),
        return_state=True,
    )
    wrong_token_error = state_error(wrong_token)

    # The runs did what they should, so every path that could leak was taken.
    messages = telegram_server.messages
    assert any(message.method == "sendPhoto" for message in messages)
    assert any("Churn pipeline failed" in (message.plain_text or "") for message in messages)
    assert "rejected the bot token" in str(wrong_token_error)

    captured = capfd.readouterr()
    logs, artifacts = read_run_records(
        [state.state_details.flow_run_id for state in (good, bad_row, wrong_token)]
    )
    assert logs and artifacts
    errors = [
        "".join(traceback.format_exception(error)) + repr(error)
        for error in (bad_row_error, wrong_token_error)
    ]
    with warehouse.connect() as conn:
        ledger_rows = [
            str(row) for row in conn.execute("select * from reporting.report_deliveries").fetchall()
        ]
    states = [state.message or "" for state in (good, bad_row, wrong_token)]
    alerts_and_reports = [f"{m.text} {m.plain_text}" for m in messages]

    assert leaks([captured.out, captured.err]) == [], "in stdout/stderr"
    assert leaks(logs) == [], "in the Prefect logs"
    assert leaks(artifacts) == [], "in the artifacts"
    assert leaks(alerts_and_reports) == [], "in the chat"
    assert leaks(errors + states) == [], "in the exceptions"
    assert leaks(ledger_rows) == [], "in the delivery ledger"
    assert files_holding_secrets([ROOT, reliability_output]) == [], "in files on disk"
    case.survived()
