"""Turn `.env` settings into the pipeline's Prefect blocks, and prove that saved blocks work.

The parsing half is pure (no Prefect, no network) so every bad input is rejected before
anything is saved. The I/O half saves blocks idempotently and checks them; Prefect,
psycopg and the Telegram helper are imported only when needed, which keeps a rejected
input fast and free of library noise.

No secret (the warehouse password, the bot token) ever appears in a message built here:
errors from libraries are reduced to one line and scrubbed with `redact` before anyone
sees them, because their texts (URLs, HTTP bodies) can carry the secret they were given.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, quote, quote_plus, unquote, urlsplit

if TYPE_CHECKING:
    from prefect_sqlalchemy import SqlAlchemyConnector

    from blocks.telegram import TelegramBot

WAREHOUSE_URL = "WAREHOUSE_URL"
TELEGRAM_BOT_TOKEN = "TELEGRAM_BOT_TOKEN"
TELEGRAM_CHAT_ID = "TELEGRAM_CHAT_ID"
TELEGRAM_API_URL = "TELEGRAM_API_URL"
SETTING_KEYS = (WAREHOUSE_URL, TELEGRAM_BOT_TOKEN, TELEGRAM_CHAT_ID, TELEGRAM_API_URL)

WAREHOUSE_DRIVER = "postgresql+psycopg"
# Schemes people write for PostgreSQL; the block always uses psycopg 3, whatever was written.
POSTGRES_SCHEMES = frozenset({"postgresql", "postgres", "postgresql+psycopg"})
DEFAULT_POSTGRES_PORT = 5432
URL_SHAPE = "postgresql://user:password@host:5432/database"
ENCODING_HINT = "percent-encode special characters in the user name and password"

# The shape @BotFather hands out: the bot's numeric id, a colon, then the secret part.
BOT_TOKEN_PATTERN = re.compile(r"^[0-9]+:[A-Za-z0-9_-]+$")
# A numeric chat id (groups and channels are negative) or a public @channel_username.
CHAT_ID_PATTERN = re.compile(r"^(-?[0-9]+|@[A-Za-z][A-Za-z0-9_]{3,})$")
BLOCK_NAME_PATTERN = re.compile(r"^[a-z0-9-]+$")

CHECK_TIMEOUT_SECONDS = 5


class InvalidSetting(ValueError):
    """A setting is missing or malformed; the message is one line and holds no secret."""


@dataclass(frozen=True)
class WarehouseSettings:
    """Where the warehouse is and how to log in; the password is kept out of repr."""

    host: str
    port: int
    username: str
    database: str
    password: str | None = field(default=None, repr=False)
    query: dict[str, str] = field(default_factory=dict)

    def display_url(self) -> str:
        """The connection string without the password, safe to print."""
        user = quote(self.username, safe="")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{WAREHOUSE_DRIVER}://{user}@{host}:{self.port}/{quote(self.database, safe='')}"


@dataclass(frozen=True)
class TelegramSettings:
    """The bot token (kept out of repr), the chat to report to, and an optional API server."""

    bot_token: str = field(repr=False)
    chat_id: str
    api_base_url: str | None = None


@dataclass(frozen=True)
class BlockSettings:
    """What `.env` and the environment ask for; None means that block is not configured."""

    warehouse: WarehouseSettings | None
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


def parse_warehouse_url(url: str) -> WarehouseSettings:
    """Parse `postgresql://user:password@host:port/database[?param=value]`.

    The URL itself is never echoed in an error, since it may carry the password.
    """
    if "://" not in url:
        raise InvalidSetting(f"{WAREHOUSE_URL} is not a URL; expected {URL_SHAPE}")
    try:
        parts = urlsplit(url)
    except ValueError:
        raise InvalidSetting(
            f"{WAREHOUSE_URL} is malformed; expected {URL_SHAPE} ({ENCODING_HINT})"
        ) from None
    scheme = parts.scheme.lower()
    if scheme not in POSTGRES_SCHEMES:
        shown = scheme[:30] if re.fullmatch(r"[a-z0-9+.-]*", scheme) else "?"
        raise InvalidSetting(
            f"{WAREHOUSE_URL} must be a PostgreSQL URL ({URL_SHAPE}), not {shown}://..."
        )
    try:
        port = parts.port
    except ValueError:
        # urlsplit reads an unencoded ':' or '/' in a password as the start of a port.
        raise InvalidSetting(
            f"{WAREHOUSE_URL} has an invalid port; expected {URL_SHAPE} ({ENCODING_HINT})"
        ) from None
    if port == 0:
        raise InvalidSetting(f"{WAREHOUSE_URL} has an invalid port (0)")
    if parts.fragment:
        raise InvalidSetting(f"{WAREHOUSE_URL} is malformed ({ENCODING_HINT}, e.g. '#' as %23)")
    host = parts.hostname
    if not host:
        raise InvalidSetting(f"{WAREHOUSE_URL} has no host; expected {URL_SHAPE}")
    username = unquote(parts.username) if parts.username else ""
    if not username:
        raise InvalidSetting(f"{WAREHOUSE_URL} has no user name; expected {URL_SHAPE}")
    database = unquote(parts.path[1:]) if parts.path.startswith("/") else ""
    if not database:
        raise InvalidSetting(f"{WAREHOUSE_URL} has no database name; expected {URL_SHAPE}")
    if "/" in database:
        raise InvalidSetting(
            f"{WAREHOUSE_URL} has a malformed database name; expected {URL_SHAPE} ({ENCODING_HINT})"
        )
    try:
        query = dict(parse_qsl(parts.query, keep_blank_values=True, strict_parsing=True))
    except ValueError:
        raise InvalidSetting(
            f"{WAREHOUSE_URL} has malformed query parameters (after '?')"
        ) from None
    password = unquote(parts.password) if parts.password else None
    return WarehouseSettings(
        host=host,
        port=port or DEFAULT_POSTGRES_PORT,
        username=username,
        database=database,
        password=password or None,
        query=query,
    )


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
    warehouse = parse_warehouse_url(warehouse_url) if warehouse_url else None
    token = values.get(TELEGRAM_BOT_TOKEN, "")
    chat_id = values.get(TELEGRAM_CHAT_ID, "")
    api_url = values.get(TELEGRAM_API_URL, "")
    telegram = parse_telegram(token, chat_id, api_url) if token or chat_id or api_url else None
    return BlockSettings(warehouse=warehouse, telegram=telegram)


def redact(text: str, secrets: Iterable[str | None]) -> str:
    """First line of `text`, with every secret (raw or URL-encoded) replaced by ***."""
    lines = str(text).strip().splitlines()
    line = lines[0] if lines else ""
    for secret in secrets:
        if not secret:
            continue
        for form in {secret, quote(secret, safe=""), quote_plus(secret, safe="")}:
            line = line.replace(form, "***")
    return line


def describe_error(error: BaseException, secrets: Iterable[str | None]) -> str:
    """`ErrorType: first line of the message`, scrubbed of secrets."""
    message = redact(str(error), secrets)
    return f"{type(error).__name__}: {message}" if message else type(error).__name__


def build_warehouse_block(settings: WarehouseSettings) -> SqlAlchemyConnector:
    """The SqlAlchemyConnector the flows load: psycopg 3, the password as a secret."""
    from prefect_sqlalchemy import ConnectionComponents, SqlAlchemyConnector
    from pydantic import SecretStr

    return SqlAlchemyConnector(
        connection_info=ConnectionComponents(
            driver=WAREHOUSE_DRIVER,
            host=settings.host,
            port=settings.port,
            username=settings.username,
            password=SecretStr(settings.password) if settings.password else None,
            database=settings.database,
            query=settings.query or None,
        )
    )


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
    block.save(name, overwrite=True, _sync=True)


def _load_block(block_type: type, name: str) -> object | None:
    """Load a saved block, or None when no block of that type has that name."""
    try:
        return block_type.load(name, _sync=True)
    except ValueError as error:
        # Prefect says "Unable to find block document named ..." for a missing document,
        # and a fresh server without the block type fails the same way.
        if "Unable to find block" in str(error):
            return None
        raise


def check_warehouse_block(name: str) -> CheckResult:
    """Load the warehouse block and run `SELECT 1` through psycopg with its settings."""
    from prefect_sqlalchemy import SqlAlchemyConnector

    connector = _load_block(SqlAlchemyConnector, name)
    if connector is None:
        return CheckResult(False, "no such block; create it with `python -m blocks`")
    assert isinstance(connector, SqlAlchemyConnector)
    info = connector.connection_info
    if isinstance(info, str):
        # A block made by hand in the UI may hold a plain URL instead of components.
        try:
            settings = parse_warehouse_url(info)
        except InvalidSetting as error:
            return CheckResult(False, f"the block holds a bad URL: {error}")
    else:
        settings = WarehouseSettings(
            host=info.host or "localhost",
            port=info.port or DEFAULT_POSTGRES_PORT,
            username=info.username or "postgres",
            database=info.database or "postgres",
            password=info.password.get_secret_value() if info.password else None,
            query=dict(info.query or {}),
        )
    return check_warehouse(settings)


def check_warehouse(settings: WarehouseSettings) -> CheckResult:
    """Connect with a short timeout and run `SELECT 1`; say what went wrong, never the password."""
    import psycopg

    try:
        with psycopg.connect(
            host=settings.host,
            port=settings.port,
            user=settings.username,
            password=settings.password,
            dbname=settings.database,
            connect_timeout=CHECK_TIMEOUT_SECONDS,
            application_name="churn-pipeline-blocks-check",
            **settings.query,
        ) as connection:
            row = connection.execute("SELECT 1").fetchone()
    except Exception as error:
        reason = describe_error(error, [settings.password])
        return CheckResult(False, f"cannot query {settings.display_url()}: {reason}")
    if row != (1,):
        return CheckResult(False, f"SELECT 1 on {settings.display_url()} returned {row!r}")
    return CheckResult(True, f"SELECT 1 on {settings.display_url()}")


def check_telegram_block(name: str) -> CheckResult:
    """Load the Telegram block and ask the Bot API who the bot is (getMe)."""
    from blocks.telegram import TelegramBot

    bot = _load_block(TelegramBot, name)
    if bot is None:
        return CheckResult(False, "no such block; create it with `python -m blocks`")
    assert isinstance(bot, TelegramBot)
    token = bot.bot_token.get_secret_value()
    # httpx logs each request URL, token included, at INFO: keep it quiet whatever the
    # logging setup of the process turns out to be.
    for logger_name in ("httpx", "httpcore"):
        logging.getLogger(logger_name).setLevel(logging.WARNING)
    try:
        # Imported here: the delivery module belongs to the flows and pulls in the
        # Telegram library, which creating blocks does not need.
        from flows.delivery import check_bot

        username = check_bot(token, bot.api_base_url)
    except Exception as error:
        return CheckResult(False, describe_error(error, [token]))
    where = bot.api_base_url or "Telegram's Bot API"
    return CheckResult(
        True,
        f"bot @{redact(username, [token])} answers on {where}; reports go to chat {bot.chat_id}",
    )
