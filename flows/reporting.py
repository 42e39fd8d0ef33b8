"""Reporting subflow: read the marts, render the week's report, deliver it once.

It reads the marts only (never `raw`), so the report shows exactly what dbt built and
tested. Delivery goes to Telegram when the Telegram block exists, otherwise (ad hoc
runs) to the terminal and the `reports/` folder.
"""

from __future__ import annotations

import dataclasses
import sys

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from blocks.telegram import TelegramBot
from churn.delivery import ledger
from churn.report.figures import ReportData
from churn.report.marts import ReportingError, read_report_data
from churn.report.outlook_marts import with_outlook
from churn.report.outputs import RenderedReport, render, write_dry_run
from churn.report.telegram_html import html_to_markdown, html_to_plain_text
from churn.settings import RunParameters
from churn.settings.blocks import in_deployment_run, load_block
from churn.warehouse.blocks import resolve_warehouse
from churn.warehouse.connection import Warehouse
from flows.outcomes import this_pipeline_run_page


@task(name="read-marts", cache_policy=NO_CACHE)
def read_marts(warehouse: Warehouse, params: RunParameters) -> ReportData:
    """Read the week's churn and order figures, the last 12 weeks' churn rates, the
    cohorts, the churn by segment and the customer model's prediction."""
    data = read_report_data(
        warehouse, params.resolved_as_of(), params.churn_window_days, params.locale
    )
    return with_outlook(warehouse, data)


@task(name="publish-artifacts", cache_policy=NO_CACHE)
def publish_artifacts(data: ReportData, report: RenderedReport, delivery: str) -> None:
    """Show in the Prefect UI what the report said and where it went."""
    as_of = data.as_of.isoformat()
    create_markdown_artifact(
        key=f"churn-report-{as_of}",
        markdown=f"{html_to_markdown(report.full_text)}\n\n_Delivery: {delivery}_\n",
        description=f"Weekly churn report for the week ending {as_of}",
    )
    create_table_artifact(
        key="churn-weekly-last-12-weeks",
        table=[
            {"week_end": week_end.isoformat(), "weekly_churn_rate": rate}
            for week_end, rate in data.churn_history
        ],
        description=f"marts.churn_weekly, the 12 weeks up to {as_of}",
    )


@task(name="deliver-to-telegram", cache_policy=NO_CACHE, retries=0)
def deliver_to_telegram(
    warehouse: Warehouse,
    telegram: TelegramBot,
    report: RenderedReport,
    params: RunParameters,
) -> str:
    """Send the report once: claim the week in the ledger, send, record the message ids.

    A week already sent (or whose sending never confirmed) is not sent again unless
    `params.resend` says so: a report that may have arrived is never repeated silently.
    """
    # imported here: only a delivery to Telegram needs the Telegram library
    from churn.delivery.telegram import DeliveryError, send_report, timing_from_env

    logger = get_run_logger()
    as_of, chat_id = params.resolved_as_of(), telegram.chat_id
    timing = timing_from_env()  # before the claim: a bad setting must not leave one behind
    claim = ledger.claim_delivery(warehouse, as_of, chat_id, report.full_text, resend=params.resend)
    if claim.delivery_id is None:
        prior = claim.prior
        assert prior is not None
        if prior.status == "sent":
            logger.info(
                "The report for %s was already sent to chat %s (messages %s); nothing sent. "
                "Use --resend to send it again.",
                as_of,
                chat_id,
                prior.message_ids,
            )
            return "already sent"
        logger.warning(
            "A delivery of the report for %s to chat %s started at %s and never confirmed; "
            "it may have arrived, so nothing is sent. Use --resend to send it anyway.",
            as_of,
            chat_id,
            prior.started_at,
        )
        return "unconfirmed earlier delivery"
    delivery_id = claim.delivery_id
    try:
        message_ids = send_report(
            telegram.bot_token.get_secret_value(),
            chat_id,
            text_parts=report.text_parts,
            photo_png=report.chart_png,
            caption=report.caption,
            base_url=telegram.api_base_url,
            on_sent=lambda message_id: ledger.record_sent_message(
                warehouse, delivery_id, message_id
            ),
            **timing,
        )
    except DeliveryError as error:
        ledger.finish_delivery(warehouse, delivery_id, error_message=str(error))
        raise
    ledger.finish_delivery(warehouse, delivery_id)
    logger.info("Report for %s sent to chat %s: messages %s", as_of, chat_id, message_ids)
    return f"telegram chat {chat_id}, messages {', '.join(map(str, message_ids))}"


def print_dry_run(report: RenderedReport) -> None:
    """The report on the terminal, for the person who started an ad hoc run."""
    # Straight to stdout (not through print, which log_prints turns into log records).
    sys.stdout.write(html_to_plain_text(report.full_text) + "\n")
    sys.stdout.flush()


@flow(name="send-churn-report")
def send_churn_report(params: RunParameters = RunParameters()) -> str:
    """Render the week's churn report from the marts and deliver it exactly once.

    With a Telegram block the report goes to its chat, recorded in a delivery ledger so a
    rerun or a retried flow does not send the same week twice (`resend` overrides).
    Without one, an ad hoc run prints it and writes it under `reports/` (a dry run); a
    deployment run without the block fails. A Markdown artifact keeps what was sent.
    """
    params = params.for_week()
    logger = get_run_logger()
    warehouse = resolve_warehouse(params.warehouse_block)
    data = dataclasses.replace(read_marts(warehouse, params), run_url=this_pipeline_run_page())
    report = render(data)
    telegram = load_block(TelegramBot, params.telegram_block)
    if telegram is not None:
        delivery = deliver_to_telegram(warehouse, telegram, report, params)
    elif in_deployment_run():
        raise ReportingError(
            f"no TelegramBot block named '{params.telegram_block}': create it with "
            "`python -m blocks` before running the deployment"
        )
    else:
        directory = write_dry_run(report, data.as_of)
        delivery = f"dry run, written to {directory}"
        logger.info("Delivery: %s (no Telegram block '%s')", delivery, params.telegram_block)
        print_dry_run(report)
    publish_artifacts(data, report, delivery)
    return delivery
