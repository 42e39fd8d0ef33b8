"""What a delivery that cannot succeed raises (kept apart from the Telegram library, which
only the sending needs)."""

from __future__ import annotations


class DeliveryError(RuntimeError):
    """A delivery that cannot succeed by retrying (or whose retries ran out).

    The message never contains the bot token. `sent_message_ids` lists the messages that
    were confirmed before the failure, so a caller knows what the chat already has.
    """

    def __init__(self, message: str, sent_message_ids: list[int] | None = None) -> None:
        super().__init__(message)
        self.sent_message_ids: list[int] = list(sent_message_ids or [])
