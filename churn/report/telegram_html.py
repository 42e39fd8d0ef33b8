"""Telegram's HTML parse mode and its limits: lengths, splitting, plain-text and Markdown copies.

Why HTML parse mode: with `html.escape` on every data value no product name can break
the message (MarkdownV2 would need 18 characters escaped). Every rendered line closes the
tags it opens, so the text can be split on line boundaries without cutting a tag open.

Lengths are counted the way Telegram counts them, in UTF-16 code units (an emoji outside
the Basic Multilingual Plane counts twice), which is never less than Python's `len`.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from typing import Final

TELEGRAM_MESSAGE_LIMIT: Final = 4096
TELEGRAM_CAPTION_LIMIT: Final = 1024
ELLIPSIS: Final = "\u2026"

_TAG = re.compile(r"<(/?)([a-zA-Z][\w-]*)[^>]*>")
_ENTITY_OR_CHAR = re.compile(r"&(?:#\d+|#[xX][0-9a-fA-F]+|[a-zA-Z]+);|.", re.DOTALL)


def telegram_length(text: str) -> int:
    """The length Telegram checks: UTF-16 code units (astral emoji count as two)."""
    return len(text.encode("utf-16-le")) // 2


def _tags_balanced(line: str) -> bool:
    """Whether the tags of one line close in order within the line."""
    stack: list[str] = []
    for match in _TAG.finditer(line):
        closing, name = match.group(1) == "/", match.group(2).lower()
        if not closing:
            stack.append(name)
        elif not stack or stack.pop() != name:
            return False
    return not stack


def _strip_tags(line: str) -> str:
    return _TAG.sub("", line)


def _cut_long_line(line: str, limit: int) -> Iterator[str]:
    """Cut one over-long line into chunks of at most `limit`, tags stripped.

    Entities (`&amp;`) are kept whole, so no chunk ends in half an escape sequence.
    """
    chunk: list[str] = []
    size = 0
    for token in _ENTITY_OR_CHAR.findall(_strip_tags(line)):
        token_size = telegram_length(token)
        if chunk and size + token_size > limit:
            yield "".join(chunk)
            chunk, size = [], 0
        chunk.append(token)
        size += token_size
    if chunk:
        yield "".join(chunk)


def split_message(text: str, limit: int = TELEGRAM_MESSAGE_LIMIT) -> list[str]:
    """Split HTML text into messages of at most `limit` Telegram characters each.

    Splits on line boundaries, preferring the last blank line (a section break) of a
    part. Because lines are self-contained, no tag is left open; a line whose tags do not
    balance, or that alone exceeds the limit, loses its tags (and is cut if too long)
    rather than failing. Blank parts are dropped: Telegram rejects empty messages.
    """
    if limit < 16:
        raise ValueError("limit must be at least 16 characters")
    if telegram_length(text) <= limit:
        return [text] if text.strip() else []

    parts: list[str] = []
    current: list[str] = []

    def size(lines: list[str]) -> int:
        return telegram_length("\n".join(lines))

    def flush(lines: list[str]) -> None:
        part = "\n".join(lines).strip("\n")
        if part.strip():
            parts.append(part)

    for raw_line in text.split("\n"):
        line = raw_line if _tags_balanced(raw_line) else _strip_tags(raw_line)
        if telegram_length(line) > limit:
            flush(current)
            current = []
            parts.extend(_cut_long_line(line, limit))
            continue
        if size([*current, line]) <= limit:
            current.append(line)
            continue
        # The part is full: end it at its last section break if what follows that break
        # still fits with the new line, so sections stay together.
        breaks = [i for i, existing in enumerate(current) if not existing.strip() and i > 0]
        if breaks and size([*current[breaks[-1] + 1 :], line]) <= limit:
            flush(current[: breaks[-1]])
            current = [*current[breaks[-1] + 1 :], line]
        else:
            flush(current)
            current = [line]
    flush(current)
    return parts


def truncate_caption(text: str, limit: int = TELEGRAM_CAPTION_LIMIT) -> str:
    """Shorten a caption to `limit` Telegram characters, on a line boundary, with "…"."""
    if telegram_length(text) <= limit:
        return text
    parts = split_message(text, limit - 1)
    return parts[0].rstrip() + ELLIPSIS if parts else ""


def html_to_plain_text(text: str) -> str:
    """The report without Telegram's HTML tags, for terminals and text files."""
    return html.unescape(re.sub(r"</?[a-zA-Z][^>]*>", "", text))


def html_to_markdown(text: str) -> str:
    """The report as Markdown for the Prefect artifact (bold kept, other tags dropped)."""
    bolded = re.sub(r"</?b>", "**", text)
    lines = html_to_plain_text(bolded).splitlines()
    return "\n".join(f"{line}  " if line else "" for line in lines)
