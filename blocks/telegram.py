"""The Telegram block: where the weekly report is delivered."""

from __future__ import annotations

from prefect.blocks.core import Block
from pydantic import Field, SecretStr


class TelegramBot(Block):
    """A Telegram bot and the chat it reports to.

    The bot token is a secret: Prefect stores it encrypted and never shows it in the UI,
    the API or a repr. `api_base_url` points at a self-hosted Bot API server when set.
    """

    _block_type_name = "Telegram Bot"
    _block_type_slug = "telegram-bot"
    _description = "A Telegram bot token (secret) and the chat that receives the churn report."

    bot_token: SecretStr = Field(description="The bot token given by @BotFather.")
    chat_id: str = Field(description="The chat (or channel) id that receives the report.")
    api_base_url: str | None = Field(
        default=None,
        description="Bot API base URL, e.g. http://127.0.0.1:8081/bot for a self-hosted "
        "server. Empty means Telegram's public Bot API.",
    )
