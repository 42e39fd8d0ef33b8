"""Telegram faults, through the whole reporting subflow against the fake Bot API.

Every test copies the template warehouse (marts built for AS_OF, no delivery yet) and runs
`send_churn_report` with a fault scripted at the fake. The outcome is always one delivery
(each message of the report exactly once, recorded as sent in the ledger) or a clear
failure (nothing sent, the ledger says failed) - never two deliveries.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from churn.delivery import ledger
from churn.delivery.telegram import DeliveryError
from churn.settings import RunParameters
from churn.warehouse.connection import Warehouse
from flows.reporting import send_churn_report
from tests.reliability import AS_OF, Kind, ReliabilityCase, block_names, state_error
from tests.telegram_fake import DEFAULT_CHAT_ID, DEFAULT_TOKEN, FakeTelegramServer

from .conftest import save_telegram_block, save_warehouse_block

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("reliability_env")]


@pytest.fixture
def reporting(
    reliability_warehouse: Warehouse, telegram_server: FakeTelegramServer
) -> Callable[..., tuple[Any, Warehouse]]:
    """Run the reporting subflow for AS_OF on a fresh copy; returns (final state, warehouse)."""
    warehouse = reliability_warehouse

    def run(token: str = DEFAULT_TOKEN, chat_id: str = DEFAULT_CHAT_ID) -> tuple[Any, Warehouse]:
        names = block_names("telegram")
        save_warehouse_block(warehouse, names["warehouse_block"])
        save_telegram_block(names["telegram_block"], telegram_server.base_url, token, chat_id)
        state = send_churn_report(RunParameters(as_of=AS_OF, **names), return_state=True)
        return state, warehouse

    return run


def assert_delivered_once(state: Any, warehouse: Warehouse, server: FakeTelegramServer) -> None:
    """The report arrived once: a photo and the text parts, each once, all in the ledger."""
    assert state.is_completed(), state.message
    sent = server.messages
    ids = ", ".join(str(message.message_id) for message in sent)
    assert state.result() == f"telegram chat {DEFAULT_CHAT_ID}, messages {ids}"
    assert [message.method for message in sent][:1] == ["sendPhoto"]
    assert all(message.method == "sendMessage" for message in sent[1:]) and len(sent) >= 2
    texts = [message.text for message in sent[1:]]
    assert len(texts) == len(set(texts)), "a text part was sent twice"
    deliveries = ledger.deliveries_for(warehouse, AS_OF)
    assert deliveries == [(DEFAULT_CHAT_ID, "sent", [message.message_id for message in sent])]


def assert_failed_without_sending(
    state: Any, warehouse: Warehouse, server: FakeTelegramServer
) -> DeliveryError:
    error = state_error(state)
    assert isinstance(error, DeliveryError), repr(error)
    assert server.messages == []
    assert [status for _, status, _ in ledger.deliveries_for(warehouse, AS_OF)] == ["failed"]
    return error


def test_a_429_is_waited_out_and_the_report_arrives_once(
    reporting: Callable[..., tuple[Any, Warehouse]],
    telegram_server: FakeTelegramServer,
    reliability: Callable[[Kind], ReliabilityCase],
) -> None:
    case = reliability("fault")
    telegram_server.fail_with_retry_after(1)

    state, warehouse = reporting()

    assert_delivered_once(state, warehouse, telegram_server)
    assert ("sendPhoto", 429) in telegram_server.requests
    case.survived()


def test_two_server_errors_are_retried_and_the_report_arrives_once(
    reporting: Callable[..., tuple[Any, Warehouse]],
    telegram_server: FakeTelegramServer,
    reliability: Callable[[Kind], ReliabilityCase],
) -> None:
    case = reliability("fault")
    telegram_server.fail_with_status(502, times=2)

    state, warehouse = reporting()

    assert_delivered_once(state, warehouse, telegram_server)
    assert [outcome for _, outcome in telegram_server.requests].count(502) == 2
    case.survived()


def test_a_timeout_is_retried_without_resending_the_messages_that_arrived(
    reporting: Callable[..., tuple[Any, Warehouse]],
    telegram_server: FakeTelegramServer,
    reliability: Callable[[Kind], ReliabilityCase],
) -> None:
    case = reliability("fault")
    # The photo goes through; the first text message hangs past the client's timeout
    # (CHURN_TELEGRAM_TIMEOUT_SECONDS) and is dropped unanswered.
    telegram_server.let_through(1)
    telegram_server.hang(seconds=5)

    state, warehouse = reporting()

    assert_delivered_once(state, warehouse, telegram_server)
    # The fake records the hung request once it drops it, after the client gave up on it.
    deadline = time.monotonic() + 10
    while ("sendMessage", "dropped") not in telegram_server.requests:
        assert time.monotonic() < deadline, telegram_server.requests
        time.sleep(0.1)
    case.survived()


def test_an_outage_fails_clearly_after_bounded_retries_and_a_rerun_delivers_once(
    reporting: Callable[..., tuple[Any, Warehouse]],
    telegram_server: FakeTelegramServer,
    reliability: Callable[[Kind], ReliabilityCase],
) -> None:
    case = reliability("fault")
    # Every attempt at the photo fails: five, the delivery's max_attempts.
    telegram_server.fail_with_status(500, times=5)

    started = time.monotonic()
    state, warehouse = reporting()

    error = assert_failed_without_sending(state, warehouse, telegram_server)
    assert "failed after 5 attempts" in str(error)
    assert time.monotonic() - started < 60
    # Telegram is back: the next run sends the week once (a failed claim does not block).
    state, _ = reporting()
    assert state.is_completed(), state.message
    assert [status for _, status, _ in ledger.deliveries_for(warehouse, AS_OF)] == [
        "failed",
        "sent",
    ]
    assert len([m for m in telegram_server.messages if m.method == "sendPhoto"]) == 1
    case.failed_clearly()


def test_an_invalid_token_fails_clearly_without_sending_or_revealing_it(
    reporting: Callable[..., tuple[Any, Warehouse]],
    telegram_server: FakeTelegramServer,
    reliability: Callable[[Kind], ReliabilityCase],
) -> None:
    case = reliability("fault")
    secret_half = f"SECRET-TOKEN-{uuid.uuid4().hex[:12]}"
    token = f"987654321:{secret_half}"

    state, warehouse = reporting(token=token)

    error = assert_failed_without_sending(state, warehouse, telegram_server)
    assert "rejected the bot token" in str(error)
    with warehouse.connect() as conn:
        [(error_message,)] = conn.execute(
            "select error_message from reporting.report_deliveries"
        ).fetchall()
    for text in (str(error), repr(error), error_message, state.message or ""):
        assert secret_half not in text
    case.failed_clearly()


def test_an_unknown_chat_fails_clearly_and_sends_nothing(
    reporting: Callable[..., tuple[Any, Warehouse]],
    telegram_server: FakeTelegramServer,
    reliability: Callable[[Kind], ReliabilityCase],
) -> None:
    case = reliability("fault")

    state, warehouse = reporting(chat_id="-100555000111")

    error = assert_failed_without_sending(state, warehouse, telegram_server)
    assert "chat not found" in str(error).lower() and "-100555000111" in str(error)
    case.failed_clearly()
