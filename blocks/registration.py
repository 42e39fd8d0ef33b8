"""Turn `.env` settings into the pipeline's Prefect blocks, and prove that saved blocks work.

The parsing half is pure (no Prefect, no network) so every bad input is rejected before
anything is saved. The I/O half saves blocks idempotently and checks them; Prefect,
psycopg and the Telegram library are imported only when needed, which keeps a rejected
input fast and free of library noise.

No secret (the warehouse password, the bot token) ever appears in a message built here:
errors from libraries are reduced to one line and scrubbed (`churn.redaction`) before
anyone sees them, because their texts (URLs, HTTP bodies) can carry the secret.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from churn.redaction import describe_error, redact
from churn.warehouse.connection import InvalidWarehouseUrl, Warehouse, parse_warehouse_url

if TYPE_CHECKING:
    from prefect_sqlalchemy import SqlAlchemyConnector

    from blocks.telegram import TelegramBot

WAREHOUSE_URL = "WAREHOUSE_URL"
TELEGRAM_BOT_TOKEN = "TELEGRAM_BOT_TOKEN"
TELEGRAM_CHAT_ID = "TELEGRAM_CHAT_ID"
TELEGRAM_API_URL = "TELEGRAM_API_URL"
SETTING_KEYS = (WAREHOUSE_URL, TELEGRAM_BOT_TOKEN, TELEGRAM_CHAT_ID, TELEGRAM_API_URL)

# The shape @BotFather hands out: the bot's numeric id, a colon, then the secret part.
BOT_TOKEN_PATTERN = re.compile(r"^[0-9]+:[A-Za-z0-9_-]+$")
# A numeric chat id (groups and channels are negative) or a public @channel_username.
CHAT_ID_PATTERN = re.compile(r"^(-?[0-9]+|@[A-Za-z][A-Za-z0-9_]{3,})$")
BLOCK_NAME_PATTERN = re.compile(r"^[a-z0-9-]+$")

CHECK_TIMEOUT_SECONDS = 5


class InvalidSetting(ValueError):
    """A setting is missing or malformed; the message is one line and holds no secret."""


@dataclass(frozen=True)
class TelegramSettings:
    """The bot token (kept out of repr), the chat to report to, and an optional API server."""

    bot_token: str = field(repr=False)
    chat_id: str
    api_base_url: str | None = None


@dataclass(frozen=True)
class BlockSettings:
    """What `.env` and the environment ask for; None means that block is not configured."""

    warehouse: Warehouse | None
    telegram: TelegramSettings | None

    def secrets(self) -> list[str]:
        """Every secret value held, for scrubbing library messages."""
        values: list[str | None] = []
        if self.warehouse is not None:
            values.append(self.warehouse.password)
        if self.telegram is not None:
            values.append(self.telegram.bot_token)
        return [value for value in values if value]


@dataclass(frozen=True)
class CheckResult:
    """The outcome of proving one block: ok or not, and one printable line of detail."""

    ok: bool
    detail: str


def validate_block_name(name: str) -> str:
    """Accept the block names Prefect accepts: lowercase letters, digits and dashes."""
    if not BLOCK_NAME_PATTERN.match(name):
        raise InvalidSetting(
            f"invalid block name {name!r}: use lowercase letters, numbers and dashes only"
        )
    return name


def read_environment(env_file: Path | None, environ: Mapping[str, str]) -> dict[str, str]:
    """Merge the `.env` file (if any) with the environment; real variables win.

    Only the keys this command knows are returned, stripped of surrounding blanks, so a
    stray variable elsewhere in the file can neither leak into a message nor matter.
    """
    from dotenv import dotenv_values

    values: dict[str, str] = {}
    if env_file is not None:
        for key, value in dotenv_values(env_file).items():
            if key in SETTING_KEYS and value is not None:
                values[key] = value.strip()
    for key in SETTING_KEYS:
        if key in environ:
            values[key] = environ[key].strip()
    return values


def parse_warehouse_setting(url: str) -> Warehouse:
    """The warehouse of WAREHOUSE_URL; errors name the setting, never its value."""
    try:
        return parse_warehouse_url(url, origin=WAREHOUSE_URL, subject=WAREHOUSE_URL)
    except InvalidWarehouseUrl as error:
        raise InvalidSetting(str(error)) from None


def parse_api_url(url: str) -> str:
    """Accept an http(s) Bot API base URL with a host, e.g. http://127.0.0.1:8081/bot."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - reading it validates the port
    except ValueError:
        raise InvalidSetting(
            f"{TELEGRAM_API_URL} is malformed; expected http(s)://host[:port]/bot"
        ) from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise InvalidSetting(
            f"{TELEGRAM_API_URL} must be an http(s) URL such as http://127.0.0.1:8081/bot"
        )
    return url


def parse_telegram(token: str, chat_id: str, api_url: str) -> TelegramSettings:
    """Validate the Telegram settings; the token's value never appears in an error."""
    if not token:
        raise InvalidSetting(
            f"{TELEGRAM_BOT_TOKEN} is empty; set it with {TELEGRAM_CHAT_ID}, or leave "
            "all TELEGRAM_* settings empty to skip the Telegram block"
        )
    if not BOT_TOKEN_PATTERN.match(token):
        raise InvalidSetting(
            f"{TELEGRAM_BOT_TOKEN} does not look like a bot token "
            "(<digits>:<letters, digits, '_' or '-'>, as given by @BotFather)"
        )
    if not chat_id:
        raise InvalidSetting(
            f"{TELEGRAM_CHAT_ID} is empty; set the chat that receives the report, or leave "
            "all TELEGRAM_* settings empty to skip the Telegram block"
        )
    if not CHAT_ID_PATTERN.match(chat_id):
        raise InvalidSetting(
            f"{TELEGRAM_CHAT_ID} must be a numeric chat id (e.g. -1001234567890) "
            "or a @channel_username"
        )
    return TelegramSettings(
        bot_token=token,
        chat_id=chat_id,
        api_base_url=parse_api_url(api_url) if api_url else None,
    )


def settings_from_values(values: Mapping[str, str]) -> BlockSettings:
    """Decide which blocks are configured and validate them all before anything is saved.

    A block is configured when any of its settings is non-empty; a half-configured block
    is an error rather than a skip, because skipping it would hide a typo.
    """
    warehouse_url = values.get(WAREHOUSE_URL, "")
    warehouse = parse_warehouse_setting(warehouse_url) if warehouse_url else None
    token = values.get(TELEGRAM_BOT_TOKEN, "")
    chat_id = values.get(TELEGRAM_CHAT_ID, "")
    api_url = values.get(TELEGRAM_API_URL, "")
    telegram = parse_telegram(token, chat_id, api_url) if token or chat_id or api_url else None
    return BlockSettings(warehouse=warehouse, telegram=telegram)


def build_warehouse_block(warehouse: Warehouse) -> SqlAlchemyConnector:
    """The SqlAlchemyConnector the flows load: psycopg 3, the password as a secret."""
    from churn.warehouse.blocks import connector_for

    return connector_for(warehouse)


def build_telegram_block(settings: TelegramSettings) -> TelegramBot:
    """The TelegramBot block the reporting flow loads."""
    from pydantic import SecretStr

    from blocks.telegram import TelegramBot

    return TelegramBot(
        bot_token=SecretStr(settings.bot_token),
        chat_id=settings.chat_id,
        api_base_url=settings.api_base_url,
    )


def save_block(block: SqlAlchemyConnector | TelegramBot, name: str) -> None:
    """Create or update the named block; saving the same settings twice changes nothing."""
    block.save(name, overwrite=True, _sync=True)  # type: ignore[call-arg]


def check_warehouse_block(name: str) -> CheckResult:
    """Load the warehouse block and run `SELECT 1` with its settings."""
    from churn.warehouse.blocks import warehouse_from_block

    try:
        warehouse = warehouse_from_block(name)
    except InvalidWarehouseUrl as error:  # a block made by hand may hold a bad URL
        return CheckResult(False, f"the block holds a bad URL: {error}")
    if warehouse is None:
        return CheckResult(False, "no such block; create it with `python -m blocks`")
    return check_warehouse(warehouse)


def check_warehouse(warehouse: Warehouse) -> CheckResult:
    """Connect once with a short timeout and run `SELECT 1`; never show the password."""
    try:
        with warehouse.connect(
            attempts=1,
            timeout_seconds=CHECK_TIMEOUT_SECONDS,
            application_name="churn-pipeline-blocks-check",
        ) as connection:
            row = connection.execute("SELECT 1").fetchone()
    except Exception as error:
        reason = describe_error(error, [warehouse.password])
        return CheckResult(False, f"cannot query {warehouse.display_url()}: {reason}")
    if row != (1,):
        return CheckResult(False, f"SELECT 1 on {warehouse.display_url()} returned {row!r}")
    return CheckResult(True, f"SELECT 1 on {warehouse.display_url()}")


def check_telegram_block(name: str) -> CheckResult:
    """Load the Telegram block and ask the Bot API who the bot is (getMe).

    Telegram is optional: without the block, reports are dry runs, which is not a failure.
    """
    from blocks.telegram import TelegramBot
    from churn.delivery.telegram import check_bot
    from churn.settings.blocks import load_block

    bot = load_block(TelegramBot, name)
    if bot is None:
        return CheckResult(
            True,
            "no such block: reports will be dry runs (printed and written to reports/); "
            "create it with `python -m blocks` to send them to Telegram",
        )
    token = bot.bot_token.get_secret_value()
    try:
        username = check_bot(token, bot.api_base_url)
    except Exception as error:
        return CheckResult(False, describe_error(error, [token]))
    where = bot.api_base_url or "Telegram's Bot API"
    return CheckResult(
        True,
        f"bot @{redact(username, [token])} answers on {where}; reports go to chat {bot.chat_id}",
    )
