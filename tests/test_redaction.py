"""One redaction for every message: secrets whole, URL-encoded, and a token's secret half."""

from __future__ import annotations

from churn.redaction import REDACTED, describe_error, first_line, redact

TOKEN = "123456789:AAH-valid_Secret_Token_For_Tests_0123"
PASSWORD = "Pw@9f3k:zz/#"


def test_a_token_is_hidden_whole_url_encoded_and_by_its_secret_half() -> None:
    text = f"url /bot{TOKEN}/getMe, quoted {TOKEN.replace(':', '%3A')}, half {TOKEN[10:]}"

    redacted = redact(text, [TOKEN])

    assert TOKEN.partition(":")[2] not in redacted
    assert redacted.count(REDACTED) == 3


def test_a_password_is_hidden_raw_and_percent_encoded() -> None:
    text = f"password={PASSWORD} in postgresql://u:Pw%409f3k%3Azz%2F%23@h/db"

    redacted = redact(text, [PASSWORD, None, ""])

    assert "Pw@9f3k" not in redacted and "Pw%409f3k" not in redacted
    assert redacted.count(REDACTED) == 2


def test_short_values_are_not_treated_as_secrets() -> None:
    assert redact("a b c", ["a", "b"]) == "a b c"


def test_an_error_is_described_in_one_line_without_its_secret() -> None:
    error = ValueError(f"\n  connection to db failed: password {PASSWORD} rejected\nHINT: x")

    assert first_line(str(error)) == f"connection to db failed: password {PASSWORD} rejected"
    assert describe_error(error, [PASSWORD]) == (
        "ValueError: connection to db failed: password *** rejected"
    )
