"""The failure alert's text: the step named from the error, no secret, a link to the run."""

from __future__ import annotations

import pytest

from churn.build.invocation import DbtBuildFailed
from churn.delivery.alerts import MAX_ERROR_CHARS, failing_step, render_alert
from churn.importing.contract import ImportRefused
from churn.simulation.plan import GenerationError
from churn.warehouse.connection import WarehouseUnavailable
from tests.telegram_fake import parse_telegram_html

TOKEN = "123456789:AAH-secret_token_value_0123456789"


@pytest.mark.parametrize(
    ("error", "message", "step"),
    [
        (DbtBuildFailed("dbt build failed: unique_orders"), "", "dbt build (a model or data"),
        (GenerationError("raw holds data"), "", "generation"),
        (ImportRefused("import refused"), "", "import of the shop's exports"),
        (WarehouseUnavailable("cannot reach"), "", "warehouse connection"),
        (None, "import refused, nothing landed: 2 bad rows", "import of the shop's exports"),
        (None, "raw holds no orders yet: import your ...", "source (what raw holds)"),
        (None, "something else", "pipeline"),
    ],
)
def test_the_failing_step_is_named_from_the_error_or_the_message(
    error: BaseException | None, message: str, step: str
) -> None:
    assert failing_step(error, message).startswith(step)


def test_the_alert_is_valid_html_without_secrets_and_links_to_the_run() -> None:
    error_text = f"Invalid token {TOKEN} <b>" + "x" * 1000
    url = "http://127.0.0.1:4200/runs/flow-run/abc"

    text = render_alert("weekly-churn-report", "clever-fox", "2026-11-23", "dbt build",
                        error_text, [TOKEN], run_url=url)  # fmt: skip

    assert TOKEN not in text and TOKEN.split(":")[1] not in text
    error_line = next(line for line in text.splitlines() if line.startswith("Error:"))
    assert len(error_line) <= len("Error: ") + MAX_ERROR_CHARS + 20
    assert text.splitlines()[-1] == f'🔗 <a href="{url}">This run in the Prefect UI</a>'
    for line in text.splitlines():
        parse_telegram_html(line)
    without = render_alert("f", "r", "2026-11-23", "s", "e", [])
    assert "<a href" not in without
