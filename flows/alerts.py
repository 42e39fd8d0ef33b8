"""The failure alert: when a pipeline run fails, say so in the report's chat.

The alert names the flow, the week and the failing step, in a few lines. It never
carries a secret, and it never hides the failure: a problem while alerting is logged and
the run stays failed.
"""

from __future__ import annotations

import html
import logging
from typing import Any

from flows.dbt_build import DbtBuildFailed
from flows.generation import GenerationError
from flows.warehouse import MissingWarehouseBlock, WarehouseUnavailable

logger = logging.getLogger(__name__)

MAX_ERROR_CHARS = 300


def failing_step(error: BaseException | None, message: str) -> str:
    """Which of the pipeline's steps failed, from the exception or the state message."""
    from flows.delivery import DeliveryError
    from flows.reporting import ReportingError

    steps = (
        (DbtBuildFailed, "dbt build (a model or data test failed; nothing was reported)"),
        (GenerationError, "generation"),
        ((WarehouseUnavailable, MissingWarehouseBlock), "warehouse connection"),
        ((DeliveryError, ReportingError), "report delivery"),
    )
    for kinds, step in steps:
        if isinstance(error, kinds):
            return step
    lowered = message.lower()
    for word, step in (("dbt", "dbt build"), ("landing", "generation"), ("telegram", "report")):
        if word in lowered:
            return step
    return "pipeline"


def redact(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
            # a bot token's secret half can appear alone in URLs and library messages
            if ":" in secret:
                text = text.replace(secret.split(":", 1)[1], "***")
    return text


def render_alert(
    flow_name: str, run_name: str, as_of: str, step: str, error_text: str, secrets: list[str]
) -> str:
    """The alert's HTML text; every value escaped, secrets removed, the error shortened."""
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
    return "\n".join(lines)


def _warehouse_password(block_name: str) -> str | None:
    try:
        from flows.warehouse import warehouse_from_block

        warehouse = warehouse_from_block(block_name)
    except Exception:  # the alert must not fail because the warehouse block is broken
        return None
    return warehouse.password if warehouse else None


def alert_on_failure(flow: Any, flow_run: Any, state: Any) -> None:
    """Prefect on_failure hook of the parent flow: one short alert to the report's chat."""
    from flows.delivery import send_report, timing_from_env
    from flows.parameters import shop_today
    from flows.reporting import load_telegram_block

    parameters = dict(flow_run.parameters or {})
    try:
        telegram = load_telegram_block(parameters.get("telegram_block") or "telegram")
    except Exception as error:
        logger.warning(
            "No failure alert: the Telegram block could not be loaded (%s)", type(error).__name__
        )
        return
    if telegram is None:
        logger.info("No failure alert: there is no Telegram block (dry-run configuration)")
        return
    token = telegram.bot_token.get_secret_value()
    secrets = [token, _warehouse_password(parameters.get("warehouse_block") or "warehouse") or ""]
    try:
        error = state.result(raise_on_failure=False)
    except Exception:
        error = None
    error = error if isinstance(error, BaseException) else None
    message = state.message or ""
    error_text = f"{type(error).__name__}: {error}" if error is not None else message
    as_of = parameters.get("as_of") or shop_today().isoformat()
    text = render_alert(
        flow.name,
        flow_run.name,
        str(as_of),
        failing_step(error, message),
        error_text,
        secrets,
    )
    try:
        send_report(
            token,
            telegram.chat_id,
            text_parts=[text],
            photo_png=None,
            caption=None,
            base_url=telegram.api_base_url,
            max_attempts=3,
            **timing_from_env(),
        )
    except Exception as error:  # the run is already failed: log, never mask it
        logger.warning("The failure alert could not be sent: %s", redact(str(error), secrets))
