"""One rule for keeping secrets out of every message: logs, errors, alerts, CLI output.

Library messages (a driver's connection error, an HTTP error quoting a URL) can carry
the secret they were given, raw or URL-encoded; a Telegram bot token's secret half can
appear on its own in a request path. `redact` removes all of these forms.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import quote, quote_plus

REDACTED = "***"
# A shorter fragment would redact ordinary words; real secrets are longer.
MIN_SECRET_CHARS = 4
MIN_TOKEN_HALF_CHARS = 8


def secret_forms(secret: str) -> set[str]:
    """Every form in which `secret` may show up in a message."""
    forms = {secret, quote(secret, safe=""), quote(secret), quote_plus(secret, safe="")}
    _, colon, secret_half = secret.partition(":")
    if colon and len(secret_half) >= MIN_TOKEN_HALF_CHARS:  # a bot token's secret half
        forms |= {secret_half, quote(secret_half, safe="")}
    return forms


def redact(text: str, secrets: Iterable[str | None]) -> str:
    """`text` with every form of every secret replaced by ***."""
    forms: set[str] = set()
    for secret in secrets:
        if secret and len(secret) >= MIN_SECRET_CHARS:
            forms |= secret_forms(secret)
    # longest first, so a secret's URL-encoded form is not half replaced by a shorter one
    for form in sorted(forms, key=len, reverse=True):
        text = text.replace(form, REDACTED)
    return text


def first_line(text: str) -> str:
    """The first non-blank line of a message (driver errors add hints and context lines)."""
    for line in str(text).strip().splitlines():
        if line.strip():
            return line.strip()
    return ""


def describe_error(error: BaseException, secrets: Iterable[str | None] = ()) -> str:
    """`ErrorType: first line of the message`, without any secret."""
    message = redact(first_line(str(error)), secrets)
    return f"{type(error).__name__}: {message}" if message else type(error).__name__
