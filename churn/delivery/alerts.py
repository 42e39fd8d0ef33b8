"""The failure alert's text: which flow and week failed, at which step, and why.

A few lines, every value escaped, every secret removed, the error shortened.
"""

from __future__ import annotations

import html

from churn.build.invocation import DbtBuildFailed
from churn.delivery.errors import DeliveryError
from churn.importing.contract import ImportRefused
from churn.redaction import redact
from churn.report.marts import ReportingError
from churn.report.text import run_link
from churn.simulation.plan import GenerationError
from churn.warehouse.blocks import MissingWarehouseBlock
from churn.warehouse.connection import WarehouseUnavailable

MAX_ERROR_CHARS = 300

# The pipeline's steps, recognised by the errors they raise.
_STEPS_BY_ERROR: tuple[tuple[tuple[type[BaseException], ...], str], ...] = (
    ((DbtBuildFailed,), "dbt build (a model or data test failed; nothing was reported)"),
    ((GenerationError,), "generation"),
    ((ImportRefused,), "import of the shop's exports"),
    ((WarehouseUnavailable, MissingWarehouseBlock), "warehouse connection"),
    ((DeliveryError, ReportingError), "report delivery"),
)
# ... or, when the exception is not at hand, by a word of the run's state message.
_STEPS_BY_WORD = (
    ("raw holds", "source (what raw holds)"),
    ("import", "import of the shop's exports"),
    ("dbt", "dbt build"),
    ("landing", "generation"),
    ("telegram", "report"),
)


def failing_step(error: BaseException | None, message: str) -> str:
    """Which of the pipeline's steps failed, from the exception or the state message."""
    for kinds, step in _STEPS_BY_ERROR:
        if isinstance(error, kinds):
            return step
    lowered = message.lower()
    for word, step in _STEPS_BY_WORD:
        if word in lowered:
            return step
    return "pipeline"


def render_alert(
    flow_name: str,
    run_name: str,
    as_of: str,
    step: str,
    error_text: str,
    secrets: list[str],
    run_url: str | None = None,
) -> str:
    """The alert's HTML text; every value escaped, secrets removed, the error shortened,
    and a link to the run in the Prefect UI when its address is known."""
    cleaned = " ".join(redact(error_text, secrets).split())
    if len(cleaned) > MAX_ERROR_CHARS:
        cleaned = cleaned[: MAX_ERROR_CHARS - 1] + "…"
    lines = [
        "⚠️ <b>Churn pipeline failed</b>",
        f"Flow: {html.escape(flow_name)} (run {html.escape(run_name)})",
        f"Week ending: {html.escape(as_of)}",
        f"Failed step: {html.escape(step)}",
        f"Error: {html.escape(cleaned)}",
        "No report was sent for this run; see the flow run in the Prefect UI.",
    ]
    if run_url:
        lines.append(run_link(run_url, "This run in the Prefect UI"))
    return "\n".join(lines)
