"""The weekly churn pipeline: source (simulation or import) -> dbt build -> report.

Run it ad hoc with `python flows/main.py --help`; deploy it with `prefect deploy` (see
prefect.yaml). The parent flow only composes the subflows, each of which also runs on
its own.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import cast

if __package__ in (None, ""):
    # `python flows/main.py` puts flows/ on sys.path, not the project root.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

# Without internet, telemetry calls fail and log errors; a slow first start of the
# ephemeral Prefect server needs more than the default 20 s.
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")

from typing import Any

from prefect import flow, get_run_logger
from prefect.states import State

from blocks.telegram import TelegramBot
from churn.settings import RunParameters
from churn.settings.blocks import block_exists, in_deployment_run
from churn.settings.command_line import parse_run_parameters
from churn.settings.local_server import choose_server, prefect_api
from churn.warehouse.blocks import resolve_warehouse
from flows.alerts import alert_on_failure
from flows.dbt_build import build_warehouse_models
from flows.generation import generate_shop_activity
from flows.import_files import import_shop_exports
from flows.outcomes import failed_like, this_pipeline_run_page
from flows.prediction import predict_customer_churn, run_outcome
from flows.reporting import send_churn_report


def describe_delivery(block_name: str) -> str:
    """Where this run's report goes, for the run's first log line."""
    if block_exists(TelegramBot, block_name):
        return f"Telegram (block '{block_name}')"
    if in_deployment_run():
        return f"missing block '{block_name}'"
    return f"dry run (no Telegram block '{block_name}')"


@flow(name="weekly-churn-report", log_prints=True, on_failure=[alert_on_failure])
def churn_pipeline(params: RunParameters = RunParameters()) -> State[Any]:
    """Land the week's shop activity, build and test the marts, and send the churn report.

    The first step is the source: the simulation, an import of the shop's export files,
    or nothing (report on what raw already holds). The steps are subflows so each shows
    up (and can be rerun) on its own in the Prefect UI. A source that refuses its input,
    or a failing dbt test, stops the run before anything is reported. Everything is a
    function of the as-of date (default: today in the shop's time zone), so any week can
    be rebuilt and reported again.
    """
    params = params.for_week()
    logger = get_run_logger()
    warehouse = resolve_warehouse(params.warehouse_block)
    if page := this_pipeline_run_page():
        logger.info("Watch this run in the Prefect UI: %s", page)
    logger.info(
        "Week ending %s. Source: %s. Warehouse: %s, %s. Delivery: %s.",
        params.as_of,
        params.source,
        warehouse.origin,
        warehouse.display_url(),
        describe_delivery(params.telegram_block),
    )
    if params.source_kind == "simulation":
        landed = generate_shop_activity(params, return_state=True)
        if not landed.is_completed():
            return failed_like(landed)
        rows: dict[str, int] = cast(dict[str, int], landed.result())
        if rows["history_replaced"]:
            # A new simulated shop replaced all of raw: incremental marts start over too.
            params = params.model_copy(update={"full_refresh": True})
    elif params.source_kind == "files":
        imported = import_shop_exports(params, return_state=True)
        if not imported.is_completed():
            return failed_like(imported)
    built = build_warehouse_models(params, return_state=True)
    if not built.is_completed():
        return failed_like(built)
    # A prediction that fails does not hold the report back: the report says so.
    prediction = predict_customer_churn(params, return_state=True)
    reported = send_churn_report(params, return_state=True)
    if not reported.is_completed():
        return failed_like(reported)
    return run_outcome(params, reported.result(), prediction)


def main(argv: list[str] | None = None) -> int:
    """`python flows/main.py`: one run on the local Prefect server (started in the
    background by the first run, reused by the next); a failure ends with one line
    naming what failed."""
    params = parse_run_parameters(argv)
    server = choose_server()
    print(server.note, file=sys.stderr, flush=True)
    with prefect_api(server.api_url):
        state = churn_pipeline(params, return_state=True)
    if not state.is_completed():
        print(f"python flows/main.py: {state.message}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
