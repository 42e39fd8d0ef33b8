"""Delivery through python-telegram-bot against a real HTTP server that acts as Telegram."""

from __future__ import annotations

import asyncio
import html
import logging
import time
import traceback
from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest

from churn.delivery.telegram import DeliveryError, check_bot, quiet_http_logging, send_report
from churn.report.chart import render_chart
from churn.report.figures import ReportData, WeekFigures
from churn.report.telegram_html import split_message
from churn.report.text import render_caption, render_report
from tests.telegram_fake import FakeTelegramServer

TOKEN = "123456789:AAH-valid_Secret_Token_For_Tests_0123"
WRONG_TOKEN = "987654321:AAF-wrong_Secret_Token_Never_Shown_99"
CHAT_ID = "424242"
TRICKY_NAME = "Super_Mega *Deal* <b>&"
TINY_PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64  # the fake checks the signature only


class RecordingSleep:
    """An injected sleep: records the delays asked for and returns at once."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        await asyncio.sleep(0)


@pytest.fixture
def telegram() -> Iterator[FakeTelegramServer]:
    with FakeTelegramServer(token=TOKEN, chats=[CHAT_ID]) as server:
        yield server


@pytest.fixture
def sleep() -> RecordingSleep:
    return RecordingSleep()


def deliver(
    telegram: FakeTelegramServer,
    sleep: RecordingSleep,
    *,
    text_parts: list[str],
    photo_png: bytes | None = None,
    caption: str | None = None,
    **options: Any,
) -> list[int]:
    """send_report with test-sized timeouts and backoff."""
    settings: dict[str, Any] = {
        "token": TOKEN,
        "chat_id": CHAT_ID,
        "base_url": telegram.base_url,
        # Generous: a timeout on a request the fake did serve would duplicate a message,
        # and other work may be loading this machine. Timeout tests pass their own.
        "timeout_seconds": 5.0,
        "backoff_base_seconds": 0.01,
        "sleep": sleep,
    }
    settings.update(options)
    return send_report(text_parts=text_parts, photo_png=photo_png, caption=caption, **settings)


def report_with_product(name: str) -> ReportData:
    week = WeekFigures(
        week_start=date(2026, 11, 9),
        week_end=date(2026, 11, 16),
        active_start=100,
        churned_in_week=3,
        reactivated_in_week=1,
        new_in_week=4,
        active_end=102,
        weekly_churn_rate=0.03,
        lapsed_share=0.2,
        at_risk_customers=7,
        revenue_at_risk=Decimal("321.00"),
        orders_placed=50,
        orders_cancelled=2,
        cancellation_rate=0.04,
        revenue=Decimal("4321.09"),
        top_product_name=name,
        top_product_revenue=Decimal("999.99"),
        most_expensive_product_name=name,
        most_expensive_product_price=Decimal("199.90"),
    )
    return ReportData(
        as_of=date(2026, 11, 16),
        churn_window_days=90,
        locale="en_US",
        current=week,
        previous=None,
        churn_history=[(date(2026, 11, 16) - timedelta(weeks=1), 0.02), (date(2026, 11, 16), 0.03)],
        cohorts=[(date(2026, 10, 1), 0, 1.0), (date(2026, 10, 1), 1, 0.4)],
    )


def test_report_is_delivered_photo_first_then_each_part_in_html(
    telegram: FakeTelegramServer, sleep: RecordingSleep
) -> None:
    progress: list[int] = []

    ids = deliver(
        telegram,
        sleep,
        text_parts=["<b>part one</b>", "<i>part two</i>"],
        photo_png=TINY_PNG,
        caption="<b>chart</b>",
        on_sent=progress.append,
    )

    messages = telegram.messages
    assert ids == progress == [message.message_id for message in messages]
    assert [message.method for message in messages] == ["sendPhoto", "sendMessage", "sendMessage"]
    assert messages[0].photo_size == len(TINY_PNG)
    assert [message.plain_text for message in messages] == ["chart", "part one", "part two"]
    assert {message.parse_mode for message in messages} == {"HTML"}
    assert sleep.delays == []


def test_product_name_with_markup_characters_arrives_intact(
    telegram: FakeTelegramServer, sleep: RecordingSleep
) -> None:
    report = report_with_product(TRICKY_NAME)

    deliver(
        telegram,
        sleep,
        text_parts=split_message(render_report(report)),
        photo_png=render_chart(report),
        caption=render_caption(report),
    )

    text_messages = [m for m in telegram.messages if m.method == "sendMessage"]
    assert len(text_messages) == 1
    sent = text_messages[0]
    assert sent.text is not None and sent.plain_text is not None
    assert "Super_Mega *Deal* &lt;b&gt;&amp;" in sent.text  # escaped on the wire
    assert html.unescape(sent.text).count(f"<b>{TRICKY_NAME}</b> · $999.99") == 1
    assert f"{TRICKY_NAME} · $999.99" in sent.plain_text  # what the reader sees


def test_huge_report_is_accepted_by_telegram_in_parts(
    telegram: FakeTelegramServer, sleep: RecordingSleep
) -> None:
    text = "\n\n".join([render_report(report_with_product(TRICKY_NAME))] * 30)

    ids = deliver(telegram, sleep, text_parts=split_message(text))

    assert len(ids) == len(telegram.messages) > 1


# PTB 22 warns about RetryAfter.retry_after becoming a timedelta from inside its own
# constructor; delivery accepts both types.
@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")
def test_rate_limit_then_success_waits_retry_after_and_delivers_once(
    telegram: FakeTelegramServer, sleep: RecordingSleep
) -> None:
    telegram.fail_with_retry_after(3)

    ids = deliver(telegram, sleep, text_parts=["hello"])

    assert len(ids) == 1
    assert [m.plain_text for m in telegram.messages] == ["hello"]
    assert sleep.delays == [3.0]
    assert [status for method, status in telegram.requests if method == "sendMessage"] == [429, 200]


def test_server_errors_twice_then_success_delivers_once_with_growing_backoff(
    telegram: FakeTelegramServer, sleep: RecordingSleep
) -> None:
    telegram.fail_with_status(500)
    telegram.fail_with_status(502)

    ids = deliver(telegram, sleep, text_parts=["hello"])

    assert len(ids) == len(telegram.messages) == 1
    assert sleep.delays == [0.01, 0.02]


def test_timeout_then_success_delivers_once(
    telegram: FakeTelegramServer, sleep: RecordingSleep
) -> None:
    telegram.hang(30)  # woken up and dropped when the fixture stops the server
    started = time.monotonic()

    ids = deliver(telegram, sleep, text_parts=["hello"], timeout_seconds=1.0)

    assert time.monotonic() - started < 10  # gave up on the hung request, did not wait it out
    assert len(ids) == 1
    assert [m.plain_text for m in telegram.messages] == ["hello"]
    assert len(sleep.delays) == 1


def test_retry_after_a_failure_does_not_resend_confirmed_messages(
    telegram: FakeTelegramServer, sleep: RecordingSleep
) -> None:
    telegram.let_through(1)  # the photo goes through
    telegram.hang(30)  # the first text part hangs once
    telegram.let_through(1)
    telegram.fail_with_status(500)  # the second text part fails once

    ids = deliver(
        telegram,
        sleep,
        text_parts=["one", "two"],
        photo_png=TINY_PNG,
        caption="chart",
        timeout_seconds=1.0,
    )

    assert [m.plain_text for m in telegram.messages] == ["chart", "one", "two"]
    assert ids == [m.message_id for m in telegram.messages]


def test_backoff_doubles_up_to_its_cap(telegram: FakeTelegramServer, sleep: RecordingSleep) -> None:
    telegram.fail_with_status(500, times=5)

    deliver(
        telegram,
        sleep,
        text_parts=["hello"],
        backoff_base_seconds=1.0,
        backoff_cap_seconds=8.0,
        max_attempts=6,
    )

    assert sleep.delays == [1.0, 2.0, 4.0, 8.0, 8.0]  # injected sleep: the test does not wait


def test_exhausted_retries_raise_and_tell_what_was_already_sent(
    telegram: FakeTelegramServer, sleep: RecordingSleep
) -> None:
    telegram.let_through(1)
    telegram.fail_with_status(500, times=10)

    with pytest.raises(DeliveryError, match="after 3 attempts") as caught:
        deliver(telegram, sleep, text_parts=["one", "two"], max_attempts=3)

    assert caught.value.sent_message_ids == [telegram.messages[0].message_id]
    assert [m.plain_text for m in telegram.messages] == ["one"]
    assert "message 2 of 2" in str(caught.value)


def test_invalid_token_fails_fast_and_the_token_appears_nowhere(
    telegram: FakeTelegramServer,
    sleep: RecordingSleep,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="httpx")
    caplog.set_level(logging.DEBUG, logger="telegram")
    started = time.monotonic()

    with pytest.raises(DeliveryError) as caught:
        deliver(telegram, sleep, text_parts=["hello"], photo_png=TINY_PNG, token=WRONG_TOKEN)

    assert time.monotonic() - started < 5
    assert sleep.delays == []  # no retry
    assert telegram.messages == []
    error = caught.value
    assert "token" in str(error).lower()
    captured = capsys.readouterr()
    secret = WRONG_TOKEN.partition(":")[2]
    for place in (
        str(error),
        repr(error),
        "".join(traceback.format_exception(error)),
        caplog.text,
        captured.out,
        captured.err,
    ):
        assert secret not in place
    assert error.__cause__ is None and error.__context__ is None  # no chained library error


def test_unknown_chat_fails_at_once_with_a_clear_error(
    telegram: FakeTelegramServer, sleep: RecordingSleep
) -> None:
    with pytest.raises(DeliveryError, match=r"chat -100999.*[Cc]hat not found"):
        deliver(telegram, sleep, text_parts=["hello"], chat_id="-100999")

    assert sleep.delays == []
    assert [status for method, status in telegram.requests if method == "sendMessage"] == [400]


def test_text_telegram_cannot_parse_is_a_permanent_error(
    telegram: FakeTelegramServer, sleep: RecordingSleep
) -> None:
    with pytest.raises(DeliveryError, match="parse entities"):
        deliver(telegram, sleep, text_parts=["<b>unclosed"])
    with pytest.raises(DeliveryError, match="too long"):
        deliver(telegram, sleep, text_parts=["x" * 4097])
    with pytest.raises(DeliveryError, match="caption is too long"):
        deliver(telegram, sleep, text_parts=[], photo_png=TINY_PNG, caption="x" * 1025)
    assert telegram.messages == []


def test_send_report_works_when_called_from_a_running_event_loop(
    telegram: FakeTelegramServer, sleep: RecordingSleep
) -> None:
    async def async_caller() -> list[int]:
        return deliver(telegram, sleep, text_parts=["from async code"])

    assert len(asyncio.run(async_caller())) == 1


def test_nothing_to_send_sends_nothing(telegram: FakeTelegramServer, sleep: RecordingSleep) -> None:
    assert deliver(telegram, sleep, text_parts=[]) == []
    assert telegram.requests == []


def test_check_bot_returns_the_username_or_a_redacted_error(telegram: FakeTelegramServer) -> None:
    assert check_bot(TOKEN, telegram.base_url, timeout_seconds=1) == "churn_report_test_bot"

    with pytest.raises(DeliveryError) as caught:
        check_bot(WRONG_TOKEN, telegram.base_url, timeout_seconds=1)
    assert WRONG_TOKEN.partition(":")[2] not in str(caught.value)


def test_http_loggers_are_raised_to_warning() -> None:
    logging.getLogger("httpx").setLevel(logging.DEBUG)

    quiet_http_logging()

    for name in ("httpx", "httpcore", "telegram"):
        assert logging.getLogger(name).getEffectiveLevel() >= logging.WARNING
