"""Prefect block types of the pipeline and the command that registers its blocks."""

from blocks.telegram import TelegramBot

__all__ = ["TelegramBot"]
