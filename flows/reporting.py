"""Reporting subflow: read the marts, render the week's report, deliver it once.

It reads the marts only (never `raw`), so the report shows exactly what dbt built and
tested. Delivery goes to Telegram when the Telegram block exists, otherwise (ad hoc
runs) to the terminal and the `reports/` folder.
"""

from __future__ import annotations

import datetime as dt
import html
import os
import re
import sys
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from flows import ledger
from flows.parameters import DEFAULT_CHURN_WINDOW_DAYS, RunParameters
from flows.report import (
    ReportData,
    WeekFigures,
    render_caption,
    render_chart,
    render_report,
    split_message,
    truncate_caption,
)
from flows.warehouse import PROJECT_ROOT, Warehouse, in_deployment_run, resolve_warehouse

CHURN_HISTORY_WEEKS = 12
COHORT_MONTHS = 12


class ReportingError(RuntimeError):
    """The report cannot be produced or delivered."""


def reports_dir() -> Path:
    return Path(os.environ.get("CHURN_REPORTS_DIR", PROJECT_ROOT / "reports")).resolve()


def _rate(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


_WEEK_SQL = """
select
    churn.week_start, churn.week_end, churn.active_start, churn.churned_in_week,
    churn.reactivated_in_week, churn.new_in_week, churn.active_end, churn.weekly_churn_rate,
    churn.lapsed_share, churn.at_risk_customers, churn.revenue_at_risk,
    kpi.orders_placed, kpi.orders_cancelled, kpi.cancellation_rate, kpi.revenue,
    kpi.top_product_name, kpi.top_product_revenue,
    kpi.most_expensive_product_name, kpi.most_expensive_product_price
from marts.churn_weekly as churn
inner join marts.kpi_weekly as kpi on churn.week_end = kpi.week_end
where churn.week_end = %s
"""


def _week_from_row(row: tuple) -> WeekFigures:
    return WeekFigures(
        week_start=row[0],
        week_end=row[1],
        active_start=row[2],
        churned_in_week=row[3],
        reactivated_in_week=row[4],
        new_in_week=row[5],
        active_end=row[6],
        weekly_churn_rate=_rate(row[7]),
        lapsed_share=_rate(row[8]),
        at_risk_customers=row[9],
        revenue_at_risk=row[10],
        orders_placed=row[11],
        orders_cancelled=row[12],
        cancellation_rate=_rate(row[13]),
        revenue=row[14],
        top_product_name=row[15],
        top_product_revenue=row[16],
        most_expensive_product_name=row[17],
        most_expensive_product_price=row[18],
    )


def read_report_data(
    warehouse: Warehouse, as_of: dt.date, churn_window_days: int, locale: str
) -> ReportData:
    """Everything the report shows, read from the marts for the week ending `as_of`."""
    with warehouse.connect() as conn:
        current = conn.execute(_WEEK_SQL, (as_of,)).fetchone()
        if current is None:
            raise ReportingError(
                f"the marts hold no full week ending {as_of}: build the dbt models for that "
                "as-of date first (and make sure raw holds at least a week of history)"
            )
        previous = conn.execute(_WEEK_SQL, (as_of - dt.timedelta(days=7),)).fetchone()
        history = conn.execute(
            """
            select week_end, weekly_churn_rate
            from marts.churn_weekly
            where week_end <= %s
            order by week_end desc
            limit %s
            """,
            (as_of, CHURN_HISTORY_WEEKS),
        ).fetchall()
        cohorts = conn.execute(
            """
            select cohort_month, months_since_first_order, retention_rate
            from marts.cohort_retention
            where cohort_month >= (
                select coalesce(max(cohort_month), date '1970-01-01') - interval '11 months'
                from marts.cohort_retention
            )
            order by cohort_month, months_since_first_order
            """
        ).fetchall()
    return ReportData(
        as_of=as_of,
        churn_window_days=churn_window_days,
        locale=locale,
        current=_week_from_row(current),
        previous=_week_from_row(previous) if previous else None,
        churn_history=[(row[0], _rate(row[1])) for row in reversed(history)],
        cohorts=[(row[0], row[1], float(row[2])) for row in cohorts],
    )


def html_to_plain_text(text: str) -> str:
    """The report without Telegram's HTML tags, for terminals and text files."""
    return html.unescape(re.sub(r"</?[a-zA-Z][^>]*>", "", text))


def html_to_markdown(text: str) -> str:
    """The report as Markdown for the Prefect artifact (bold kept, other tags dropped)."""
    bolded = re.sub(r"</?b>", "**", text)
    lines = html_to_plain_text(bolded).splitlines()
    return "\n".join(f"{line}  " if line else "" for line in lines)


@dataclass(frozen=True)
class RenderedReport:
    text_parts: list[str]
    caption: str
    chart_png: bytes

    @property
    def full_text(self) -> str:
        return "\n".join(self.text_parts)


def render(data: ReportData) -> RenderedReport:
    text = render_report(data)
    return RenderedReport(
        text_parts=split_message(text),
        caption=truncate_caption(render_caption(data)),
        chart_png=render_chart(data),
    )


def write_dry_run(report: RenderedReport, as_of: dt.date) -> Path:
    """Write the report (HTML as sent, plain text, chart) under reports/<as-of>/."""
    directory = reports_dir() / as_of.isoformat()
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "report.html").write_text(report.full_text + "\n", encoding="utf-8")
    (directory / "report.txt").write_text(
        html_to_plain_text(report.full_text) + "\n", encoding="utf-8"
    )
    (directory / "chart.png").write_bytes(report.chart_png)
    return directory


def load_telegram_block(block_name: str):
    """The TelegramBot block of that name, or None when it does not exist."""
    from blocks.telegram import TelegramBot

    try:
        return TelegramBot.load(block_name, _sync=True)
    except ValueError as error:
        if "Unable to find block document" in str(error):
            return None
        raise


@task(name="read-marts", cache_policy=NO_CACHE)
def read_marts(warehouse: Warehouse, params: RunParameters) -> ReportData:
    """Read the week's churn and order figures from the marts."""
    return read_report_data(
        warehouse, params.resolved_as_of(), params.churn_window_days, params.locale
    )


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
    telegram,
    as_of: dt.date,
    report: RenderedReport,
    resend: bool,
) -> str:
    """Send the report once: claim the week in the ledger, send, record the message ids."""
    from flows.delivery import DeliveryError, send_report, timing_from_env

    logger = get_run_logger()
    chat_id = telegram.chat_id
    timing = timing_from_env()  # before the claim: a bad setting must not leave one behind
    claim = ledger.claim_delivery(warehouse, as_of, chat_id, report.full_text, resend=resend)
    if not claim.granted:
        prior = claim.prior
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
    try:
        message_ids = send_report(
            telegram.bot_token.get_secret_value(),
            chat_id,
            text_parts=report.text_parts,
            photo_png=report.chart_png,
            caption=report.caption,
            base_url=telegram.api_base_url,
            on_sent=lambda message_id: ledger.record_sent_message(
                warehouse, claim.delivery_id, message_id
            ),
            **timing,
        )
    except DeliveryError as error:
        ledger.finish_delivery(warehouse, claim.delivery_id, error_message=str(error))
        raise
    ledger.finish_delivery(warehouse, claim.delivery_id)
    logger.info("Report for %s sent to chat %s: messages %s", as_of, chat_id, message_ids)
    return f"telegram chat {chat_id}"


@flow(name="send-churn-report")
def send_churn_report(
    as_of: dt.date | None = None,
    churn_window_days: int = DEFAULT_CHURN_WINDOW_DAYS,
    locale: str = "en_US",
    warehouse_block: str = "warehouse",
    telegram_block: str = "telegram",
    resend: bool = False,
) -> str:
    """Render the week's churn report from the marts and deliver it exactly once.

    With a Telegram block the report goes to its chat, recorded in a delivery ledger so a
    rerun or a retried flow does not send the same week twice (`resend` overrides).
    Without one, an ad hoc run prints it and writes it under `reports/` (a dry run); a
    deployment run without the block fails. A Markdown artifact keeps what was sent.
    """
    params = RunParameters(
        as_of=as_of,
        churn_window_days=churn_window_days,
        locale=locale,
        warehouse_block=warehouse_block,
        telegram_block=telegram_block,
        resend=resend,
    )
    logger = get_run_logger()
    warehouse = resolve_warehouse(params.warehouse_block)
    data = read_marts(warehouse, params)
    report = render(data)
    telegram = load_telegram_block(params.telegram_block)
    if telegram is None:
        if in_deployment_run():
            raise ReportingError(
                f"no TelegramBot block named '{params.telegram_block}': create it with "
                "`python -m blocks` before running the deployment"
            )
        directory = write_dry_run(report, data.as_of)
        delivery = f"dry run, written to {directory}"
        logger.info("Delivery: %s (no Telegram block '%s')", delivery, params.telegram_block)
        # Straight to stdout (not through print, which log_prints turns into log records):
        # the dry run's reader is the person at the terminal.
        sys.stdout.write(html_to_plain_text(report.full_text) + "\n")
        sys.stdout.flush()
    else:
        delivery = deliver_to_telegram(warehouse, telegram, data.as_of, report, params.resend)
    publish_artifacts(data, report, delivery)
    return delivery
