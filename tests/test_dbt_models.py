"""The dbt project on generated data: it builds, its tests pass, churn matches a reference."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import pytest

from churn.build.commands import build_args, dbt_vars, raw_check_args
from churn.build.invocation import (
    DbtBuildFailed,
    NodeResult,
    invocation_folder,
    location_args,
    run_dbt,
)
from churn.settings.environment import temporary_environment
from churn.settings.paths import DBT_PROJECT_DIR
from churn.simulation.landing import land_files, write_activity_files
from churn.simulation.plan import plan_generation
from churn.warehouse.connection import Warehouse

from .churn_reference import churn_weekly_reference, cohort_retention_reference, read_raw
from .conftest import create_database, drop_database

pytestmark = pytest.mark.slow

AS_OF = dt.date(2026, 11, 23)


def land_shop(warehouse: Warehouse, directory: Path, **shop) -> None:
    settings = dict(seed=3, customers=1200, products=80, history_days=300, locale="en_US")
    settings.update(shop)
    plan = plan_generation(None, as_of=AS_OF, **settings)
    write_activity_files(plan, directory)
    land_files(warehouse, plan, directory)


def dbt_build(warehouse: Warehouse, as_of: dt.date = AS_OF) -> list[NodeResult]:
    return run_dbt(warehouse, build_args(as_of, 90))


@pytest.fixture(scope="module")
def built_warehouse(postgres_admin, tmp_path_factory):
    warehouse = create_database(postgres_admin, "dbt")
    land_shop(warehouse, tmp_path_factory.mktemp("landing"))
    results = dbt_build(warehouse)
    yield warehouse, results
    drop_database(postgres_admin, warehouse)


def read_mart(warehouse: Warehouse, table: str) -> list[dict]:
    with warehouse.connect() as conn:
        cursor = conn.execute(f"select * from marts.{table} order by 1, 2")
        names = [column.name for column in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def test_dbt_build_passes_every_model_and_test(built_warehouse):
    _, results = built_warehouse
    statuses = {row.status for row in results}
    assert statuses <= {"success", "pass", "no-op"}, statuses
    kinds = {row.type for row in results}
    assert {"model", "test", "unit_test"} <= kinds


def test_the_warehouse_has_the_four_layers(built_warehouse):
    warehouse, _ = built_warehouse
    with warehouse.connect() as conn:
        schemas = {
            row[0] for row in conn.execute("select schema_name from information_schema.schemata")
        }
    assert {"raw", "staging", "intermediate", "marts"} <= schemas


def test_churn_weekly_matches_an_independent_computation_for_every_week(built_warehouse):
    warehouse, _ = built_warehouse
    expected = churn_weekly_reference(read_raw(warehouse), AS_OF)
    actual = read_mart(warehouse, "churn_weekly")
    assert len(actual) == len(expected) >= 40
    for mart_row, reference_row in zip(actual, expected.to_dict("records"), strict=True):
        for column, reference in reference_row.items():
            value = mart_row[column]
            if reference is None or (isinstance(reference, float) and math.isnan(reference)):
                assert value is None, (mart_row["week_end"], column)
            elif isinstance(reference, float):
                assert float(value) == pytest.approx(reference, abs=1e-6), (
                    mart_row["week_end"],
                    column,
                )
            else:
                assert value == reference, (mart_row["week_end"], column, value, reference)


def test_cohort_retention_matches_an_independent_computation(built_warehouse):
    warehouse, _ = built_warehouse
    expected = cohort_retention_reference(read_raw(warehouse), AS_OF).to_dict("records")
    actual = read_mart(warehouse, "cohort_retention")
    assert len(actual) == len(expected) > 10
    for mart_row, reference_row in zip(actual, expected, strict=True):
        assert {**mart_row, "retention_rate": float(mart_row["retention_rate"])} == reference_row


def test_the_weekly_identity_holds_and_churn_is_visible(built_warehouse):
    warehouse, _ = built_warehouse
    rows = read_mart(warehouse, "churn_weekly")
    for row in rows:
        assert row["active_end"] == (
            row["active_start"]
            - row["churned_in_week"]
            + row["reactivated_in_week"]
            + row["new_in_week"]
        )
    assert sum(row["churned_in_week"] for row in rows) > 50
    assert sum(row["reactivated_in_week"] for row in rows) > 0


def test_weekly_order_figures_match_the_orders_mart(built_warehouse):
    warehouse, _ = built_warehouse
    with warehouse.connect() as conn:
        kpi = conn.execute(
            "select orders_placed, orders_cancelled, revenue, previous_revenue "
            "from marts.kpi_weekly where week_end = %s",
            (AS_OF,),
        ).fetchone()
        direct = conn.execute(
            """
            select count(*), count(*) filter (where order_status = 'cancelled'),
                   sum(order_amount) filter (where is_completed)
            from marts.orders where order_date >= %s and order_date < %s
            """,
            (AS_OF - dt.timedelta(days=7), AS_OF),
        ).fetchone()
        previous = conn.execute(
            "select sum(order_amount) from marts.orders "
            "where is_completed and order_date >= %s and order_date < %s",
            (AS_OF - dt.timedelta(days=14), AS_OF - dt.timedelta(days=7)),
        ).fetchone()[0]
    assert kpi[:3] == direct
    assert kpi[3] == previous


def test_a_duplicate_order_id_fails_the_build_naming_the_test(make_warehouse, tmp_path):
    warehouse = make_warehouse("broken")
    land_shop(warehouse, tmp_path, customers=200, history_days=60)
    with warehouse.connect() as conn:
        conn.execute("insert into raw.orders select * from raw.orders order by order_id limit 1")
    with pytest.raises(DbtBuildFailed, match="unique_shop_orders_order_id"):
        dbt_build(warehouse)


BUILT_TABLES = (
    "marts.churn_weekly",
    "marts.kpi_weekly",
    "marts.cohort_retention",
    "marts.at_risk_customers",
    "marts.customers",
    "marts.products",
    "marts.orders",
    "marts.order_items",
    "marts.churn_segments_weekly",
    "marts.customer_purchase_summary",
    # the incremental intermediate tables, which the marts only partly show
    "intermediate.int_orders_priced",
    "intermediate.int_purchase_days_sequenced",
    "intermediate.int_product_sales_daily",
    # every column but counted_until, which says which run last wrote the row
    """(
        select customer_id, orders_placed, completed_orders, first_order_date,
            last_order_date, lifetime_revenue, revenue_before_last_year
        from intermediate.int_customer_order_totals
    )""",
)


def mart_checksums(warehouse: Warehouse) -> dict[str, tuple[int, str]]:
    sums = {}
    with warehouse.connect() as conn:
        for table in BUILT_TABLES:
            sums[table] = conn.execute(
                f"select count(*), md5(string_agg(t::text, '|' order by t::text)) from {table} as t"
            ).fetchone()
    return sums


def test_a_weekly_incremental_run_equals_a_full_build(built_warehouse, make_warehouse, tmp_path):
    full, _ = built_warehouse
    weekly = make_warehouse("weekly")
    land_shop(weekly, tmp_path)
    dbt_build(weekly, AS_OF - dt.timedelta(days=7))
    results = dbt_build(weekly, AS_OF)
    # the weekly run inserted one new week into the weekly marts, not the history
    with weekly.connect() as conn:
        built_at = conn.execute("select count(*) from marts.churn_weekly").fetchone()[0]
    assert built_at == len(read_mart(full, "churn_weekly"))
    messages = {row.node: row.message for row in results}
    assert messages["churn_weekly"] == "INSERT 0 1"
    assert messages["kpi_weekly"] == "INSERT 0 1"
    assert mart_checksums(weekly) == mart_checksums(full)


def test_a_weekly_run_counts_on_the_customer_totals(make_warehouse, tmp_path):
    """Over a year of history: the new orders are added, the days leaving the last 365
    days move out of that revenue, and the customers without either keep their row."""
    weekly = make_warehouse("totals_weekly")
    full = make_warehouse("totals_full")
    week_start = AS_OF - dt.timedelta(days=7)
    shop = dict(customers=150, history_days=400)
    land_shop(weekly, tmp_path / "weekly", **shop)
    land_shop(full, tmp_path / "full", **shop)
    dbt_build(weekly, week_start)
    dbt_build(weekly, AS_OF)
    dbt_build(full, AS_OF)
    assert mart_checksums(weekly) == mart_checksums(full)
    with weekly.connect() as conn:
        kept, rewritten = conn.execute(
            """
            select count(*) filter (where counted_until = %(week_start)s),
                count(*) filter (where counted_until = %(as_of)s)
            from intermediate.int_customer_order_totals
            """,
            {"week_start": week_start, "as_of": AS_OF},
        ).fetchone()
        # completed revenue that left the last 365 days during the week
        left = conn.execute(
            """
            select count(*) from intermediate.int_orders_priced
            where is_completed and order_date >= %s and order_date < %s
            """,
            (week_start - dt.timedelta(days=365), AS_OF - dt.timedelta(days=365)),
        ).fetchone()[0]
    assert kept > 0 and rewritten > 0
    assert left > 0


def test_weekly_runs_across_a_months_end_equal_a_full_build(make_warehouse, tmp_path):
    """Two weeks at once, [Oct 27, Nov 10): days added to October's cohort figures,
    though the reported week lies in November."""
    as_of = dt.date(2026, 11, 10)
    weekly = make_warehouse("month_weekly")
    full = make_warehouse("month_full")
    land_shop(weekly, tmp_path / "weekly", customers=200, history_days=120)
    land_shop(full, tmp_path / "full", customers=200, history_days=120)
    dbt_build(weekly, as_of - dt.timedelta(days=14))
    dbt_build(weekly, as_of)
    dbt_build(full, as_of)
    assert mart_checksums(weekly) == mart_checksums(full)
    with weekly.connect() as conn:
        months = conn.execute(
            """
            select max(cohort_month + months_since_first_order * interval '1 month')::date
            from marts.cohort_retention
            """
        ).fetchone()[0]
    assert months == dt.date(2026, 11, 1)


def test_a_rerun_and_a_backfill_equal_full_builds(built_warehouse, make_warehouse, tmp_path):
    full, _ = built_warehouse
    weekly = make_warehouse("rerun")
    earlier = make_warehouse("earlier")
    backfill_as_of = AS_OF - dt.timedelta(days=21)
    land_shop(weekly, tmp_path / "weekly")
    land_shop(earlier, tmp_path / "earlier")
    dbt_build(weekly, AS_OF - dt.timedelta(days=14))
    dbt_build(weekly, AS_OF)  # two weeks at once (a week was skipped)
    results = dbt_build(weekly, AS_OF)  # the same week again
    messages = {row.node: row.message for row in results}
    assert messages["churn_weekly"] == "INSERT 0 1"
    assert mart_checksums(weekly) == mart_checksums(full)
    # Back to an earlier week without --full-refresh: the same tables as a full build.
    dbt_build(weekly, backfill_as_of)
    dbt_build(earlier, backfill_as_of)
    assert mart_checksums(weekly) == mart_checksums(earlier)


def test_the_checks_window_reads_the_new_rows_only(make_warehouse, tmp_path):
    """A weekly run does not test the history again; a full build tests every row."""
    warehouse = make_warehouse("window")
    week_start = AS_OF - dt.timedelta(days=7)
    land_shop(warehouse, tmp_path, customers=200, history_days=60)
    with warehouse.connect() as conn:
        # an old order line with no quantity: a defect the last full build would have caught
        conn.execute(
            """
            update raw.order_items set quantity = null
            where order_id = (select min(order_id) from raw.orders where order_date < %s)
            """,
            (week_start - dt.timedelta(days=14),),
        )
    window_rows = run_dbt(warehouse, raw_check_args(AS_OF, 90, checks_from=week_start))
    assert {row.status for row in window_rows} == {"pass"}
    with pytest.raises(DbtBuildFailed, match="source_not_null_shop_order_items_quantity"):
        run_dbt(warehouse, raw_check_args(AS_OF, 90))
    with warehouse.connect() as conn:
        # a new order taking an old order's id: the window's unique test reads every
        # row sharing a key with the new rows, so it still fails
        conn.execute(
            """
            update raw.orders set order_id = (select min(order_id) from raw.orders)
            where order_id = (select min(order_id) from raw.orders where order_date >= %s)
            """,
            (week_start,),
        )
    with pytest.raises(DbtBuildFailed, match="source_unique_shop_orders_order_id"):
        run_dbt(warehouse, raw_check_args(AS_OF, 90, checks_from=week_start))


def test_dbt_docs_generate_writes_the_catalog(built_warehouse):
    """`dbt docs generate` works with the environment of a run, into a folder of its own."""
    from dbt.cli.main import dbtRunner

    warehouse, _ = built_warehouse
    in_the_tree = DBT_PROJECT_DIR / "target" / "catalog.json"
    in_the_tree.unlink(missing_ok=True)  # left by an older version, or by hand
    with temporary_environment(warehouse.dbt_env()), invocation_folder() as target:
        result = dbtRunner().invoke(
            [
                "docs",
                "generate",
                "--quiet",
                "--vars",
                dbt_vars(AS_OF, 90),
                *location_args(target),
            ]
        )
        assert result.success
        assert "model.churn.churn_weekly" in (target / "catalog.json").read_text()
    assert not in_the_tree.exists(), "nothing is written into the source tree"
