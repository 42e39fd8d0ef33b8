"""The parent flow's failure hook: one short alert to the report's chat when a run fails.

It never carries a secret, and it never hides the failure: a problem while alerting is
logged and the run stays failed.
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic import ValidationError

from blocks.telegram import TelegramBot
from churn.delivery.alerts import failing_step, render_alert
from churn.redaction import describe_error
from churn.settings import RunParameters
from churn.settings.blocks import load_block
from churn.warehouse.blocks import warehouse_from_block
from flows.outcomes import run_page

logger = logging.getLogger(__name__)


def _run_parameters(flow_run: Any) -> RunParameters:
    """The failed run's parameters (the defaults where they cannot be read back)."""
    try:
        return RunParameters.model_validate((flow_run.parameters or {}).get("params") or {})
    except ValidationError:
        return RunParameters()


def _warehouse_password(block_name: str) -> str | None:
    try:
        warehouse = warehouse_from_block(block_name)
    except Exception:  # the alert must not fail because the warehouse block is broken
        return None
    return warehouse.password if warehouse else None


def _state_error(state: Any) -> BaseException | None:
    try:
        error = state.result(raise_on_failure=False)
    except Exception:
        return None
    return error if isinstance(error, BaseException) else None


def alert_on_failure(flow: Any, flow_run: Any, state: Any) -> None:
    """Prefect on_failure hook of the parent flow: one short alert to the report's chat."""
    params = _run_parameters(flow_run)
    try:
        telegram = load_block(TelegramBot, params.telegram_block)
    except Exception as load_error:
        logger.warning(
            "No failure alert: the Telegram block could not be loaded (%s)",
            type(load_error).__name__,
        )
        return
    if telegram is None:
        logger.info("No failure alert: there is no Telegram block (dry-run configuration)")
        return
    # imported here: only a failed run with a Telegram block needs the Telegram library
    from churn.delivery.telegram import send_report, timing_from_env

    token = telegram.bot_token.get_secret_value()
    secrets = [token, _warehouse_password(params.warehouse_block) or ""]
    error = _state_error(state)
    message = state.message or ""
    text = render_alert(
        flow.name,
        flow_run.name,
        params.resolved_as_of().isoformat(),
        failing_step(error, message),
        f"{type(error).__name__}: {error}" if error is not None else message,
        secrets,
        run_url=run_page(getattr(flow_run, "id", None)),
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
    except Exception as failure:  # the run is already failed: log, never mask it
        logger.warning("The failure alert could not be sent: %s", describe_error(failure, secrets))
