"""The weekly churn pipeline: generation -> dbt build -> report.

Run it ad hoc with `python flows/main.py --help`; deploy it with `prefect deploy` (see
prefect.yaml). The parent flow only composes the three subflows, each of which also runs
on its own.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

if __package__ in (None, ""):
    # `python flows/main.py` puts flows/ on sys.path, not the project root.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

# Without internet, telemetry calls fail and log errors; a slow first start of the
# ephemeral Prefect server needs more than the default 20 s.
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")

import argparse
import datetime as dt
from typing import NoReturn

from pydantic import ValidationError

from flows.parameters import (
    DEFAULT_CHURN_WINDOW_DAYS,
    DEFAULT_CUSTOMERS,
    DEFAULT_HISTORY_DAYS,
    DEFAULT_PRODUCTS,
    DEFAULT_SEED,
    SUPPORTED_LOCALES,
    BlockName,
    ChurnWindowDays,
    CustomerCount,
    HistoryDays,
    Locale,
    ProductCount,
    RunParameters,
    Seed,
    describe_validation_error,
)


class _OneLineErrorParser(argparse.ArgumentParser):
    """Usage errors (an unknown option, `--customers ten`) in one line, like the others.

    argparse's own error() prints the whole usage first: a dozen lines around the one
    that says what is wrong.
    """

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message} (see --help)\n")


def parse_args(argv: list[str] | None = None) -> RunParameters:
    """Turn command-line options into validated run parameters (exit 2 with one line if bad)."""
    parser = _OneLineErrorParser(
        prog="python flows/main.py",
        description="Simulate a week of shop activity, build the dbt marts and send the churn "
        "report. Without blocks it uses an embedded PostgreSQL and prints the report (dry run).",
    )
    parser.add_argument(
        "--as-of",
        metavar="YYYY-MM-DD",
        help="exclusive end of the reported week (default: today in America/Sao_Paulo)",
    )
    parser.add_argument(
        "--customers",
        type=int,
        default=DEFAULT_CUSTOMERS,
        help="customers signing up over the history window (default: %(default)s)",
    )
    parser.add_argument(
        "--products",
        type=int,
        default=DEFAULT_PRODUCTS,
        help="catalogue size (default: %(default)s)",
    )
    parser.add_argument(
        "--history-days",
        type=int,
        default=DEFAULT_HISTORY_DAYS,
        help="days of history landed by the first run (default: %(default)s)",
    )
    parser.add_argument(
        "--seed", type=int, default=DEFAULT_SEED, help="simulation seed (default: %(default)s)"
    )
    parser.add_argument(
        "--locale",
        default="en_US",
        help=f"report and data locale: {', '.join(SUPPORTED_LOCALES)} (default: %(default)s)",
    )
    parser.add_argument(
        "--churn-window-days",
        type=int,
        default=DEFAULT_CHURN_WINDOW_DAYS,
        help="days without a completed order after which a customer is churned "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--warehouse-block",
        default="warehouse",
        help="SqlAlchemyConnector block of the warehouse (default: %(default)s)",
    )
    parser.add_argument(
        "--telegram-block",
        default="telegram",
        help="TelegramBot block of the report's chat (default: %(default)s)",
    )
    parser.add_argument(
        "--no-generate",
        dest="generate",
        action="store_false",
        help="skip the simulation: report on what raw already holds",
    )
    parser.add_argument(
        "--dbt-node-tasks",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="run each dbt model and test as its own Prefect task (slower; default: off for "
        "ad hoc runs, on in the deployments)",
    )
    parser.add_argument(
        "--full-refresh",
        action="store_true",
        help="rebuild every incremental model from scratch (after changing raw by hand)",
    )
    parser.add_argument(
        "--resend",
        action="store_true",
        help="send the report even if this week was already delivered to the chat",
    )
    namespace = parser.parse_args(argv)
    values = vars(namespace)
    if values["as_of"] is not None:
        try:
            values["as_of"] = dt.date.fromisoformat(values["as_of"])
        except ValueError:
            parser.exit(2, f"error: as-of: '{values['as_of']}' is not a date (YYYY-MM-DD)\n")
    try:
        return RunParameters(**values)
    except ValidationError as error:
        parser.exit(2, f"error: {describe_validation_error(error)}\n")


from prefect import flow, get_run_logger  # noqa: E402

from flows.alerts import alert_on_failure  # noqa: E402
from flows.dbt_build import build_warehouse_models  # noqa: E402
from flows.generation import generate_shop_activity  # noqa: E402
from flows.reporting import load_telegram_block, send_churn_report  # noqa: E402
from flows.warehouse import in_deployment_run, resolve_warehouse  # noqa: E402


@flow(name="weekly-churn-report", log_prints=True, on_failure=[alert_on_failure])
def churn_pipeline(
    as_of: dt.date | None = None,
    customers: CustomerCount = DEFAULT_CUSTOMERS,
    products: ProductCount = DEFAULT_PRODUCTS,
    history_days: HistoryDays = DEFAULT_HISTORY_DAYS,
    seed: Seed = DEFAULT_SEED,
    locale: Locale = "en_US",
    churn_window_days: ChurnWindowDays = DEFAULT_CHURN_WINDOW_DAYS,
    warehouse_block: BlockName = "warehouse",
    telegram_block: BlockName = "telegram",
    generate: bool = True,
    dbt_node_tasks: bool = True,
    full_refresh: bool = False,
    resend: bool = False,
) -> str:
    """Land the week's shop activity, build and test the marts, and send the churn report.

    The three steps are subflows so each shows up (and can be rerun) on its own in the
    Prefect UI. A failing dbt test stops the run before anything is reported. Everything
    is a function of `as_of` (default: today in the shop's time zone), so any week can be
    rebuilt and reported again.
    """
    params = RunParameters(
        as_of=as_of,
        customers=customers,
        products=products,
        history_days=history_days,
        seed=seed,
        locale=locale,
        churn_window_days=churn_window_days,
        warehouse_block=warehouse_block,
        telegram_block=telegram_block,
        generate=generate,
        dbt_node_tasks=dbt_node_tasks,
        full_refresh=full_refresh,
        resend=resend,
    )
    logger = get_run_logger()
    report_date = params.resolved_as_of()
    warehouse = resolve_warehouse(params.warehouse_block)
    telegram = load_telegram_block(params.telegram_block)
    if telegram is not None:
        delivery = f"Telegram chat {telegram.chat_id} (block '{params.telegram_block}')"
    elif in_deployment_run():
        delivery = f"missing block '{params.telegram_block}'"
    else:
        delivery = f"dry run (no Telegram block '{params.telegram_block}')"
    logger.info(
        "Week ending %s. Warehouse: %s, %s. Delivery: %s.",
        report_date,
        warehouse.origin,
        warehouse.display_url(),
        delivery,
    )
    full_refresh = params.full_refresh
    if params.generate:
        landed = generate_shop_activity(
            as_of=report_date,
            customers=params.customers,
            products=params.products,
            history_days=params.history_days,
            seed=params.seed,
            locale=params.locale,
            warehouse_block=params.warehouse_block,
        )
        # A new simulated shop replaces all of raw: incremental marts start over too.
        full_refresh = full_refresh or bool(landed["history_replaced"])
    build_warehouse_models(
        as_of=report_date,
        churn_window_days=params.churn_window_days,
        warehouse_block=params.warehouse_block,
        dbt_node_tasks=params.dbt_node_tasks,
        full_refresh=full_refresh,
        # Only what this run landed is known: raw written by others is checked whole.
        check_new_rows_only=params.generate,
    )
    return send_churn_report(
        as_of=report_date,
        churn_window_days=params.churn_window_days,
        locale=params.locale,
        warehouse_block=params.warehouse_block,
        telegram_block=params.telegram_block,
        resend=params.resend,
    )


def main(argv: list[str] | None = None) -> int:
    params = parse_args(argv)
    churn_pipeline(**params.model_dump())
    return 0


if __name__ == "__main__":
    sys.exit(main())
