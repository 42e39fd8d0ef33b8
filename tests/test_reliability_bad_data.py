"""Bad raw data, one defect per test: the run stops at the dbt build and harms nothing.

Each test copies the template warehouse (a good week built for AS_OF, the next week
landed in raw), plants one defect among the next week's rows and runs that week without
generating. The run must fail at the dbt build naming the failing check, send no report
but exactly one failure alert, and leave every mart as it was and readable.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from churn.build.invocation import DbtBuildFailed
from churn.delivery import ledger
from churn.warehouse.connection import Warehouse
from tests.reliability import (
    AS_OF,
    NEXT_WEEK,
    Kind,
    ReliabilityCase,
    execute,
    run_pipeline,
    state_error,
    table_fingerprints,
)
from tests.telegram_fake import FakeTelegramServer

from .conftest import register_blocks

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("reliability_env")]

# check_defect(defect_sql, failing_check)
CheckDefect = Callable[[str, str], None]
# The first order of the week that is landed but not built yet: the defects go there.
NEW_ORDER = "(select min(order_id) from raw.orders where order_date >= %(week_start)s)"


def assert_defect_stops_the_run_at_the_dbt_build(
    defect_sql: str,
    failing_check: str,
    *,
    warehouse: Warehouse,
    telegram: FakeTelegramServer,
    case: ReliabilityCase,
) -> None:
    names = register_blocks(warehouse, telegram, "bad-data")
    marts_before = table_fingerprints(warehouse, "marts")
    assert execute(warehouse, defect_sql.format(new_order=NEW_ORDER), {"week_start": AS_OF}) >= 1

    state = run_pipeline(names, NEXT_WEEK, source="raw")

    error = state_error(state)
    assert isinstance(error, DbtBuildFailed), repr(error)
    assert failing_check in str(error)
    # The check ran and found the defect: it failed, it did not break (an error would
    # stop the run just the same, whatever the data).
    statuses = {row.node: row.status for row in error.rows if failing_check in row.node}
    assert statuses and set(statuses.values()) == {"fail"}, statuses
    # No report, and exactly one message: the alert, naming the step and the check.
    assert ledger.deliveries_for(warehouse, NEXT_WEEK) == []
    [alert] = telegram.messages
    assert "Churn pipeline failed" in (alert.plain_text or "")
    assert "dbt build" in (alert.plain_text or "")
    assert failing_check in (alert.plain_text or "")
    # The marts are exactly as the good week left them, and still readable.
    assert table_fingerprints(warehouse, "marts") == marts_before
    with warehouse.connect() as conn:
        row = conn.execute(
            "select active_end from marts.churn_weekly where week_end = %s", (AS_OF,)
        ).fetchone()
    assert row is not None and row[0] > 0
    case.rejected()


@pytest.fixture
def check_defect(
    reliability_warehouse: Warehouse,
    telegram_server: FakeTelegramServer,
    reliability: Callable[[Kind], ReliabilityCase],
) -> CheckDefect:
    """Plants a defect (SQL) and checks the run stops at the dbt build naming the check."""
    case = reliability("bad input")

    def check(defect_sql: str, failing_check: str) -> None:
        assert_defect_stops_the_run_at_the_dbt_build(
            defect_sql,
            failing_check,
            warehouse=reliability_warehouse,
            telegram=telegram_server,
            case=case,
        )

    return check


def test_a_duplicate_order_id_stops_the_run_and_keeps_the_marts(check_defect: CheckDefect) -> None:
    check_defect(
        "insert into raw.orders select * from raw.orders where order_id = {new_order}",
        "source_unique_shop_orders_order_id",
    )


def test_an_order_of_an_unknown_customer_stops_the_run_and_keeps_the_marts(
    check_defect: CheckDefect,
) -> None:
    check_defect(
        "update raw.orders set customer_id = 99999999 where order_id = {new_order}",
        "source_relationships_shop_orders_customer_id",
    )


def test_an_item_of_an_unknown_product_stops_the_run_and_keeps_the_marts(
    check_defect: CheckDefect,
) -> None:
    check_defect(
        "update raw.order_items set product_id = 99999999 where order_id = {new_order}",
        "source_relationships_shop_order_items_product_id",
    )


def test_a_zero_or_negative_quantity_stops_the_run_and_keeps_the_marts(
    check_defect: CheckDefect,
) -> None:
    # Two lines of the week: one with quantity 0, the next with -2.
    check_defect(
        """
        with lines as (
            select order_id, line_number, row_number() over (order by order_id, line_number) as n
            from raw.order_items
            where order_id in (select order_id from raw.orders where order_date >= %(week_start)s)
        )
        update raw.order_items as items
        set quantity = case when lines.n = 1 then 0 else -2 end
        from lines
        where items.order_id = lines.order_id
            and items.line_number = lines.line_number
            and lines.n <= 2
        """,
        "source_positive_value_shop_order_items_quantity",
    )


def test_an_order_dated_before_its_customers_signup_stops_the_run_and_keeps_the_marts(
    check_defect: CheckDefect,
) -> None:
    # The customer of the week's first order now signs up the day after that order.
    check_defect(
        """
        update raw.customers as customers
        set signup_date = orders.order_date + 1
        from raw.orders as orders
        where orders.order_id = {new_order} and customers.customer_id = orders.customer_id
        """,
        "no_order_before_signup",
    )


def test_a_cancellation_before_its_order_stops_the_run_and_keeps_the_marts(
    check_defect: CheckDefect,
) -> None:
    # The week's first cancelled order is now cancelled an hour before it was placed.
    check_defect(
        """
        update raw.cancellations as cancellations
        set cancelled_at = orders.ordered_at - interval '1 hour'
        from raw.orders as orders
        where orders.order_id = cancellations.order_id
            and cancellations.order_id = (
                select min(cancellations.order_id)
                from raw.cancellations as cancellations
                inner join raw.orders as orders on cancellations.order_id = orders.order_id
                where orders.order_date >= %(week_start)s
            )
        """,
        "no_cancellation_before_its_order",
    )


def test_an_unknown_order_status_stops_the_run_and_keeps_the_marts(
    check_defect: CheckDefect,
) -> None:
    check_defect(
        "update raw.orders set status = 'shipped' where order_id = {new_order}",
        "source_accepted_values_shop_orders_status",
    )


def test_an_order_without_a_date_stops_the_run_and_keeps_the_marts(
    check_defect: CheckDefect,
) -> None:
    check_defect(
        "update raw.orders set order_date = null where order_id = {new_order}",
        "source_not_null_shop_orders_order_date",
    )


def test_a_new_order_repeating_an_old_order_id_stops_the_run_and_keeps_the_marts(
    check_defect: CheckDefect,
) -> None:
    # An id taken from the history: the duplicate is one old row and one new row.
    check_defect(
        """
        update raw.orders
        set order_id = (select min(order_id) from raw.orders where order_date < %(week_start)s)
        where order_id = {new_order}
        """,
        "source_unique_shop_orders_order_id",
    )
