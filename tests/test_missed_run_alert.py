"""The missed-run alert on a real Prefect server: one message for a run that does not
complete in time, none for a run that does."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from blocks.missed_run import AUTOMATION_NAME, create_missed_run_alert, project_deployments
from churn.settings.prefect_server import running_prefect_server
from tests.telegram_fake import FakeTelegramServer

from .conftest import save_telegram_block

pytestmark = pytest.mark.slow

DEADLINE = dt.timedelta(seconds=10)
WAIT_FOR_ALERT_SECONDS = 90
QUIET_AFTER_SECONDS = 25


@pytest.fixture(scope="module")
def server_with_services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Prefect server whose services run (the automations are evaluated there)."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    home = tmp_path_factory.mktemp("prefect-services")
    with (
        running_prefect_server(home, services=True) as api_url,
        temporary_settings({PREFECT_API_URL: api_url}),
    ):
        yield api_url


def state(name: str) -> Any:
    from prefect import states

    return getattr(states, name)()


def wait_for_messages(server: FakeTelegramServer, count: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while len(server.messages) < count and time.monotonic() < deadline:
        time.sleep(1)


def test_one_alert_for_a_run_not_completed_in_time_and_none_for_one_that_was(
    server_with_services: str, telegram_server: FakeTelegramServer, tmp_path: Path
) -> None:
    from prefect.client.orchestration import get_client

    save_telegram_block("missed-run-chat", telegram_server.base_url)
    name, deployments = create_missed_run_alert("missed-run-chat", DEADLINE)
    assert name == AUTOMATION_NAME and deployments == project_deployments()
    with get_client(sync_client=True) as client:
        flow_id = client.create_flow_from_name("weekly-churn-report")
        deployment_id = client.create_deployment(flow_id=flow_id, name=deployments[0])
        missed = client.create_flow_run_from_deployment(deployment_id)
        in_time = client.create_flow_run_from_deployment(deployment_id)
        # both are picked up; one finishes at once, the other never does
        client.set_flow_run_state(missed.id, state("Pending"))
        for name_of_state in ("Pending", "Running", "Completed"):
            client.set_flow_run_state(in_time.id, state(name_of_state))

        wait_for_messages(telegram_server, 1, WAIT_FOR_ALERT_SECONDS)
        time.sleep(QUIET_AFTER_SECONDS)  # a second alert, or one for the other run, would come

    messages = telegram_server.messages
    assert len(messages) == 1, [message.plain_text for message in messages]
    (alert,) = messages
    text = alert.plain_text or ""
    assert alert.method == "sendMessage"
    assert "Weekly churn report: a run did not complete in time" in text
    assert missed.name in text and in_time.name not in text
    assert deployments[0] in text and "10 seconds" in text
