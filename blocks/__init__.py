"""Prefect block types of the pipeline and the command that registers its blocks."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from blocks.telegram import TelegramBot

__all__ = ["TelegramBot"]


def __getattr__(name: str) -> Any:
    # Imported on first use, not with the package: `python -m blocks` runs this file
    # first, and importing Prefect here (about 4 s) delayed every rejected input.
    if name == "TelegramBot":
        from blocks.telegram import TelegramBot

        return TelegramBot
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
