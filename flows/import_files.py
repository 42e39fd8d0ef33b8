"""Source subflow, a shop's own data: its export files checked whole and landed in `raw`."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.states import Completed, Failed, State

from churn.importing.contract import ImportRefused
from churn.settings import RunParameters
from churn.settings.paths import data_dir
from churn.warehouse.blocks import resolve_warehouse
from churn.warehouse.connection import Warehouse
from flows.outcomes import result_or_failure

if TYPE_CHECKING:
    from churn.importing.exports import ImportResult


@task(name="check-and-land-exports", cache_policy=NO_CACHE)
def check_and_land_exports(warehouse: Warehouse, params: RunParameters) -> ImportResult | State:
    """Read the export files, check every value and rule of the raw contract, and land the
    rows in raw in one transaction (new rows added, changed rows replaced, identical rows
    left alone), or refuse them all (a failed state saying why). One task: checking and
    landing share the transaction that keeps raw unchanged when anything is refused."""
    # imported here: reading and checking files needs Arrow, which takes a while to load
    from churn.importing.exports import import_exports, rejected_rows_dir

    try:
        return import_exports(
            warehouse,
            params.source_path,
            output_dir=rejected_rows_dir(data_dir() / "imports"),
            replace_raw=params.replace_raw,
        )
    except ImportRefused as error:
        logger = get_run_logger()
        for line in error.shown:
            logger.warning("Rejected: %s", line)
        return Failed(message=str(error))


@flow(name="import-shop-exports")
def import_shop_exports(params: RunParameters = RunParameters()) -> State:
    """Land a shop's export files (`source: files:PATH`) in the warehouse's `raw` schema.

    PATH is a folder of the raw tables as files (orders.csv, order_items.csv, and
    optionally customers, products, cancellations), or one file of orders or order lines;
    CSV or Parquet. Bad files or rows refuse the whole import, by file, line, column and
    reason, and raw is left as it was. Importing the same files again changes nothing; a
    later export adds its new days and replaces corrected rows, and the next dbt build
    rebuilds whatever depended on rows that changed.
    """
    logger = get_run_logger()
    if params.source_kind != "files":
        return Failed(message=f"the import needs a files:PATH source, not {params.source!r}")
    warehouse = resolve_warehouse(params.warehouse_block)
    result, refused = result_or_failure(
        check_and_land_exports(warehouse, params, return_state=True)
    )
    if refused is not None:
        return refused
    result = cast("ImportResult", result)
    if result.note:
        logger.warning("Import: %s", result.note)
    if result.derived:
        logger.info("Import: %s derived from the orders", " and ".join(result.derived))
    logger.info("Import: %s", result.summary())
    return Completed(message=result.summary(), data=result.landed.changed)
