"""Delivery of the weekly report to a Telegram chat through python-telegram-bot.

The library is asyncio-only, so the public functions are synchronous wrappers that run
their own event loop and create the `Bot` inside it (a Bot reused across event loops fails
with "Event loop is closed").

Delivery semantics: messages are sent one after another and retried one at a time, so a
message Telegram confirmed is never sent again by a retry; `on_sent` reports each
confirmed message id as it happens, so a caller can record progress and resume. The one
unavoidable ambiguity is a timeout: the client cannot know whether Telegram delivered a
message whose answer never arrived, and it retries (at-least-once for that message), as
every Bot API client must.

The bot token is a secret: it is redacted from every error message, exceptions are raised
without the library's exception attached (its text can contain the token), and the HTTP
loggers that print request URLs (which contain the token) are raised to WARNING.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime as dt
import logging
import os
import warnings
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal, TypedDict, TypeVar

from telegram import Bot, InputFile, LinkPreviewOptions, Message
from telegram.constants import ParseMode
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)
from telegram.request import HTTPXRequest
from telegram.warnings import PTBDeprecationWarning

from churn.delivery.errors import DeliveryError
from churn.redaction import redact

DEFAULT_BASE_URL: Final = "https://api.telegram.org/bot"
PHOTO_FILENAME: Final = "churn_report.png"
# Loggers that can print request URLs, and so the token: httpx at INFO, httpcore and
# python-telegram-bot at DEBUG ("Set Bot API URL: ...").
SECRET_LEAKING_LOGGERS: Final = ("httpx", "httpcore", "telegram")
# How long one Bot API request may take, and the first retry's backoff (it doubles, up
# to 8 s). Set in the environment to tune delivery without code; the tests shorten them.
TIMEOUT_ENV: Final = "CHURN_TELEGRAM_TIMEOUT_SECONDS"
BACKOFF_ENV: Final = "CHURN_TELEGRAM_BACKOFF_SECONDS"

logger = logging.getLogger(__name__)

T = TypeVar("T")
SleepFunction = Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class _RetryPolicy:
    max_attempts: int
    backoff_base_seconds: float
    backoff_cap_seconds: float
    sleep: SleepFunction


def quiet_http_logging() -> None:
    """Raise the httpx, httpcore and telegram loggers to WARNING.

    httpx logs every request URL at INFO, and Bot API URLs contain the token. The level
    is set explicitly (not left to inherit) so a root logger later lowered to DEBUG does
    not bring them back; a logger already set above WARNING is left alone.
    """
    for name in SECRET_LEAKING_LOGGERS:
        named_logger = logging.getLogger(name)
        if named_logger.level == logging.NOTSET or named_logger.level < logging.WARNING:
            named_logger.setLevel(logging.WARNING)


class Timing(TypedDict, total=False):
    """send_report's timing arguments that the environment may set."""

    timeout_seconds: float
    backoff_base_seconds: float


def timing_from_env(environ: Mapping[str, str] = os.environ) -> Timing:
    """send_report's `timeout_seconds` and `backoff_base_seconds`, where the environment sets them.

    Raises ValueError naming the variable when a value is not a positive number of seconds.
    """
    timing = Timing()
    arguments: tuple[tuple[str, Literal["timeout_seconds", "backoff_base_seconds"]], ...] = (
        (TIMEOUT_ENV, "timeout_seconds"),
        (BACKOFF_ENV, "backoff_base_seconds"),
    )
    for variable, argument in arguments:
        text = environ.get(variable, "").strip()
        if not text:
            continue
        try:
            seconds = float(text)
        except ValueError:
            seconds = float("nan")
        if not 0 < seconds <= 600:  # also false for nan
            raise ValueError(f"{variable} must be a number of seconds in (0, 600], not {text!r}")
        timing[argument] = seconds
    return timing


def _run(coroutine_factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion from synchronous code.

    `asyncio.run` refuses to start inside a running loop (an async flow, a notebook), so
    in that case the coroutine runs on a fresh loop in a helper thread.
    """
    try:
        asyncio.get_running_loop()
        loop_running = True
    except RuntimeError:
        loop_running = False
    # Started outside the except block, so errors do not carry "no running event loop".
    if not loop_running:
        return asyncio.run(coroutine_factory())
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as executor:
        return executor.submit(asyncio.run, coroutine_factory()).result()


def _seconds(period: int | float | dt.timedelta) -> float:
    return period.total_seconds() if isinstance(period, dt.timedelta) else float(period)


def _retry_after_seconds(error: RetryAfter) -> float:
    # The attribute is an int or a timedelta depending on PTB_TIMEDELTA, and reading it as
    # an int warns about the coming change: accept both, silence the warning.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        return _seconds(error.retry_after)


def _make_bot(token: str, base_url: str | None, timeout_seconds: float) -> Bot:
    request = HTTPXRequest(
        connect_timeout=timeout_seconds,
        read_timeout=timeout_seconds,
        write_timeout=timeout_seconds,
        pool_timeout=timeout_seconds,
        # A photo upload may take longer than a text message; the default is 20 s.
        media_write_timeout=max(timeout_seconds * 2, timeout_seconds + 5),
    )
    return Bot(token, base_url=base_url or DEFAULT_BASE_URL, request=request)


async def _call_with_retries(
    action: Callable[[], Awaitable[T]],
    *,
    what: str,
    chat_id: str,
    token: str,
    policy: _RetryPolicy,
    sent_message_ids: list[int],
) -> T:
    """Await `action()` until it succeeds, retrying only failures that a retry can fix.

    RetryAfter waits as long as Telegram asks; timeouts, network errors and 5xx back off
    exponentially (base, 2 x base, ... capped). Everything else raises DeliveryError at
    once. The DeliveryError is raised outside the `except` block on purpose: raising it
    inside would chain the library's exception, whose text can contain the token.
    """
    attempt = 0
    while True:
        attempt += 1
        failure: str
        delay: float | None = None  # None: permanent failure
        try:
            return await action()
        except RetryAfter as error:
            delay = _retry_after_seconds(error)
            failure = f"rate limited by Telegram (retry after {delay:g} s)"
        except InvalidToken:
            # 401, or 404 (a malformed token, or a base URL that is not a Bot API).
            failure = (
                "Telegram rejected the bot token (unauthorized or not found): check the "
                "token in the Telegram block, and its api_base_url if one is set"
            )
        except Forbidden as error:
            failure = (
                f"Telegram refused {what} to chat {chat_id}: {error.message} "
                "(is the bot a member of the chat, and not blocked?)"
            )
        except ChatMigrated as error:
            failure = (
                f"chat {chat_id} was upgraded to a supergroup: use chat id {error.new_chat_id}"
            )
        except BadRequest as error:  # before NetworkError: BadRequest is a subclass of it
            hint = " (check the chat id)" if "chat not found" in error.message.lower() else ""
            failure = f"Telegram rejected {what} for chat {chat_id}: {error.message}{hint}"
        except TimedOut:  # also a NetworkError subclass; its own wording is clearer
            delay = min(
                policy.backoff_cap_seconds, policy.backoff_base_seconds * 2 ** (attempt - 1)
            )
            failure = "the request to Telegram timed out"
        except NetworkError as error:  # 5xx, refused or dropped connections
            delay = min(
                policy.backoff_cap_seconds, policy.backoff_base_seconds * 2 ** (attempt - 1)
            )
            failure = f"network or server error: {error.message}"
        except TelegramError as error:  # Conflict, invalid server answers, ...
            failure = f"Telegram error on {what}: {error.message}"

        failure = redact(failure, [token])
        if delay is None:
            raise DeliveryError(failure, sent_message_ids)
        if attempt >= policy.max_attempts:
            raise DeliveryError(
                f"Telegram request for {what} failed after {attempt} attempts; "
                f"last error: {failure}",
                sent_message_ids,
            )
        logger.warning(
            "Telegram request for %s failed: %s; retrying in %.2f s (attempt %d of %d)",
            what,
            failure,
            delay,
            attempt,
            policy.max_attempts,
        )
        await policy.sleep(delay)


async def _send_all(
    token: str,
    chat_id: str,
    *,
    text_parts: list[str],
    photo_png: bytes | None,
    caption: str | None,
    base_url: str | None,
    timeout_seconds: float,
    policy: _RetryPolicy,
    on_sent: Callable[[int], None] | None,
) -> list[int]:
    sent_message_ids: list[int] = []

    async def retrying(action: Callable[[], Awaitable[T]], what: str) -> T:
        return await _call_with_retries(
            action,
            what=what,
            chat_id=chat_id,
            token=token,
            policy=policy,
            sent_message_ids=sent_message_ids,
        )

    def confirmed(message: Message) -> None:
        sent_message_ids.append(message.message_id)
        if on_sent is not None:
            on_sent(message.message_id)

    bot = _make_bot(token, base_url, timeout_seconds)
    try:
        # Not `async with bot`: its __aenter__ calls getMe once, without retries. Calling
        # initialize() here retries it (a later __aenter__ would be a no-op); the finally
        # clause does what __aexit__ would.
        await retrying(bot.initialize, "the token check (getMe)")
        if photo_png is not None:
            confirmed(
                await retrying(
                    lambda: bot.send_photo(
                        chat_id=chat_id,
                        # A new InputFile per attempt: an upload consumes its file object.
                        photo=InputFile(photo_png, filename=PHOTO_FILENAME),
                        caption=caption,
                        parse_mode=ParseMode.HTML if caption else None,
                    ),
                    "the chart photo",
                )
            )
        for number, text in enumerate(text_parts, start=1):

            def send_text(text: str = text) -> Awaitable[Message]:
                return bot.send_message(
                    chat_id=chat_id,
                    text=text,
                    parse_mode=ParseMode.HTML,
                    link_preview_options=LinkPreviewOptions(is_disabled=True),
                )

            confirmed(
                await retrying(
                    send_text,
                    f"message {number} of {len(text_parts)}",
                )
            )
    finally:
        await bot.shutdown()
    return sent_message_ids


def send_report(
    token: str,
    chat_id: str,
    *,
    text_parts: list[str],
    photo_png: bytes | None,
    caption: str | None,
    base_url: str | None = None,
    max_attempts: int = 5,
    timeout_seconds: float = 10.0,
    on_sent: Callable[[int], None] | None = None,
    backoff_base_seconds: float = 1.0,
    backoff_cap_seconds: float = 8.0,
    sleep: SleepFunction = asyncio.sleep,
) -> list[int]:
    """Send the chart (with its caption) and then each text part; return the message ids.

    Everything is sent in HTML parse mode, link previews off. Each message is retried on
    its own (up to `max_attempts` in all): on 429 after Telegram's `retry_after`, on
    timeouts, network errors and 5xx after an exponential backoff from
    `backoff_base_seconds` capped at `backoff_cap_seconds`. An invalid token, a forbidden
    or missing chat and any other bad request raise DeliveryError at once, as does running
    out of attempts. `on_sent(message_id)` is called as each message is confirmed; `sleep`
    can be replaced (tests). The token never appears in a log line or an error.
    """
    if not token:
        raise DeliveryError("no Telegram bot token given")
    if not str(chat_id).strip():
        raise DeliveryError("no Telegram chat id given")
    if max_attempts < 1:
        raise ValueError("max_attempts must be at least 1")
    if photo_png is None and not text_parts:
        return []
    quiet_http_logging()
    policy = _RetryPolicy(max_attempts, backoff_base_seconds, backoff_cap_seconds, sleep)
    return _run(
        lambda: _send_all(
            token,
            str(chat_id),
            text_parts=list(text_parts),
            photo_png=photo_png,
            caption=caption,
            base_url=base_url,
            timeout_seconds=timeout_seconds,
            policy=policy,
            on_sent=on_sent,
        )
    )


def check_bot(
    token: str,
    base_url: str | None = None,
    *,
    timeout_seconds: float = 10.0,
    max_attempts: int = 3,
) -> str:
    """Check the token with getMe and return the bot's username (without "@").

    Raises DeliveryError, with the token redacted, when Telegram rejects the token or
    cannot be reached after `max_attempts`.
    """
    if not token:
        raise DeliveryError("no Telegram bot token given")
    quiet_http_logging()
    policy = _RetryPolicy(max_attempts, 1.0, 8.0, asyncio.sleep)

    async def get_username() -> str:
        bot = _make_bot(token, base_url, timeout_seconds)
        try:
            await _call_with_retries(
                bot.initialize,
                what="the token check (getMe)",
                chat_id="-",
                token=token,
                policy=policy,
                sent_message_ids=[],
            )
            return bot.username
        finally:
            await bot.shutdown()

    return _run(get_username)
