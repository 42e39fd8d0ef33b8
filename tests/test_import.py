"""Importing a shop's exports: every rule of the contract refused with a clear line and raw
unchanged; the same files twice change nothing; a later export appends; ownership of raw."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from churn.importing.contract import TABLE_COLUMNS, ImportRefused
from churn.importing.exports import import_exports
from churn.simulation.plan import GenerationError, plan_generation
from churn.simulation.state import foreign_raw_data, read_landed_state
from churn.warehouse.connection import Warehouse
from churn.warehouse.raw import landing_transaction
from tests.exports import (
    SHOP,
    next_exports,
    one_file_export,
    simulated_exports,
    small_tables,
    write_csv,
)
from tests.reliability import table_fingerprints

AS_OF = dt.date(2026, 11, 23)


def land(warehouse: Warehouse, path: Path, tmp_path: Path, **options: bool):
    return import_exports(warehouse, path, output_dir=tmp_path / "rejected", **options)


def raw_and_log(warehouse: Warehouse) -> tuple[object, ...]:
    """Raw's content, and the change log the next build reads."""
    with warehouse.connect() as conn:
        changes = conn.execute("select count(*) from landing.raw_changes").fetchone()
    return table_fingerprints(warehouse, "raw"), changes


def test_the_same_files_twice_change_nothing_and_a_later_export_appends(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    history = simulated_exports(tmp_path / "history", AS_OF - dt.timedelta(days=7))
    first = land(warehouse, tmp_path / "history", tmp_path)
    assert first.form == "tables" and first.landed.changed["orders"] > 500
    before = raw_and_log(warehouse)

    again = land(warehouse, tmp_path / "history", tmp_path)

    assert again.landed.changed == {}
    assert raw_and_log(warehouse) == before
    week = next_exports(tmp_path / "week", history, AS_OF)
    later = land(warehouse, tmp_path / "week", tmp_path)
    # only the new week: every order of the export is new, nothing older was touched
    new_orders = sum(1 for _ in (tmp_path / "week" / "orders.csv").open()) - 1
    assert later.landed.changed["orders"] == new_orders > 0
    assert later.landed.first_day == week.start == AS_OF - dt.timedelta(days=7)
    with warehouse.connect() as conn:
        total = conn.execute("select count(*) from raw.orders").fetchone()[0]
    assert total == first.landed.changed["orders"] + new_orders


def test_one_file_of_order_lines_derives_the_five_tables(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    simulated_exports(tmp_path / "tables", AS_OF)
    path = one_file_export(tmp_path / "tables", tmp_path / "orders.parquet")

    result = land(warehouse, path, tmp_path)

    assert result.form == "one file" and result.derived == ["customers", "products"]
    with warehouse.connect() as conn:
        signup_is_first_order = conn.execute(
            """
            select bool_and(customers.signup_date = firsts.first_day)
            from raw.customers
            inner join (
                select customer_id, min(order_date) as first_day from raw.orders group by 1
            ) as firsts using (customer_id)
            """
        ).fetchone()[0]
        revenue_kept = conn.execute(
            "select bool_and(line_amount = quantity * unit_price) from raw.order_items"
        ).fetchone()[0]
    assert signup_is_first_order and revenue_kept
    assert land(warehouse, path, tmp_path).landed.changed == {}


def test_a_file_without_order_ids_has_one_order_a_row_with_ids_stable_across_exports(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    rows = [
        [7, "1997-01-01", 1, "11.77"],
        [7, "1997-01-01", 1, "11.77"],  # the same purchase twice: two orders
        [8, "1997-01-12", 5, "77.00"],
    ]
    header = ["customer_id", "order_date", "quantity", "amount"]
    first = land(warehouse, write_csv(tmp_path / "a" / "cdnow.csv", header, rows), tmp_path)
    longer = write_csv(tmp_path / "b" / "cdnow.csv", header, [*rows, [7, "1997-03-05", 2, "9.98"]])

    second = land(warehouse, longer, tmp_path)

    assert first.landed.changed["orders"] == 3
    assert second.landed.changed["orders"] == 1  # the three known rows kept their ids
    with warehouse.connect() as conn:
        statuses = conn.execute("select distinct status from raw.orders").fetchall()
    assert statuses == [("completed",)]


# Each bad input: (file to write, header, rows) and what the error names.
GOOD_ORDERS = [[200, 1, "2026-03-01", "completed"]]
ORDERS_HEADER = ["order_id", "customer_id", "order_date", "status"]
BAD_INPUTS: dict[str, tuple[str, list[str], list[list[object]], str]] = {
    "missing-column": ("orders.csv", ["order_id", "customer_id", "order_date"],
                       [[200, 1, "2026-03-01"]], "no status column"),
    "wrong-type": ("orders.csv", ORDERS_HEADER, [[200, "one", "2026-03-01", "completed"]],
                   "column customer_id: not a whole number ('one')"),
    "bad-date": ("orders.csv", ORDERS_HEADER, [[200, 1, "2026-02-30", "completed"]],
                 "column order_date: not a date (YYYY-MM-DD) ('2026-02-30')"),
    "empty-date": ("orders.csv", ORDERS_HEADER, [[200, 1, "", "completed"]],
                   "column order_date: empty (required)"),
    "duplicate-order-id": ("orders.csv", ORDERS_HEADER,
                           [[200, 1, "2026-03-01", "completed"],
                            [200, 2, "2026-03-02", "completed"]],
                           "the same order_id is on more than one row"),
    "unknown-customer": ("orders.csv", ORDERS_HEADER, [[200, 99, "2026-03-01", "completed"]],
                         "column customer_id: no such customer"),
    "negative-quantity": ("order_items.csv", ["order_id", "product_id", "quantity", "unit_price"],
                          [[100, 10, -2, "6.50"]], "column quantity: not a whole number above 0"),
    "unknown-status": ("orders.csv", ORDERS_HEADER, [[200, 1, "2026-03-01", "returned"]],
                       "column status: not an order status (completed or cancelled)"),
    "order-before-signup": ("orders.csv", ORDERS_HEADER, [[200, 3, "2026-01-01", "completed"]],
                            "before its customer signed up (2026-01-05)"),
    "unknown-order-of-a-line": ("order_items.csv", ["order_id", "product_id", "quantity",
                                                     "unit_price"],
                                [[999, 10, 1, "6.50"]], "column order_id: no such order"),
    "header-only": ("orders.csv", ORDERS_HEADER, [], "orders.csv: holds a header but no rows"),
}  # fmt: skip


@pytest.fixture
def shop_with_data(warehouse: Warehouse, tmp_path: Path) -> Warehouse:
    """A warehouse holding the small hand-written shop, imported."""
    land(warehouse, small_tables(tmp_path / "good"), tmp_path)
    return warehouse


@pytest.mark.parametrize(("name", "header", "rows", "named"), BAD_INPUTS.values(), ids=BAD_INPUTS)
def test_every_rule_refuses_the_import_in_one_line_and_leaves_raw_unchanged(
    shop_with_data: Warehouse,
    tmp_path: Path,
    name: str,
    header: list[str],
    rows: list[list[object]],
    named: str,
) -> None:
    folder = small_tables(tmp_path / "bad")
    write_csv(folder / name, header, rows)
    before = raw_and_log(shop_with_data)

    with pytest.raises(ImportRefused) as refused:
        land(shop_with_data, folder, tmp_path)

    message = str(refused.value)
    assert "\n" not in message and message.startswith("import refused, nothing landed")
    assert named in message, message
    assert raw_and_log(shop_with_data) == before


@pytest.mark.parametrize(
    ("content", "named"),
    [
        (b"", "orders.csv: is empty"),
        (b"order_id,customer_id,order_date,status\n200,1,2026-03-01,compl\xe9ted\n",
         "orders.csv line 2: not UTF-8 text"),
    ],
    ids=["empty-file", "not-utf8"],
)  # fmt: skip
def test_an_unreadable_file_is_refused_and_raw_unchanged(
    shop_with_data: Warehouse, tmp_path: Path, content: bytes, named: str
) -> None:
    folder = small_tables(tmp_path / "bad")
    (folder / "orders.csv").write_bytes(content)
    before = raw_and_log(shop_with_data)

    with pytest.raises(ImportRefused, match="import refused") as refused:
        land(shop_with_data, folder, tmp_path)

    assert named in str(refused.value) and "\n" not in str(refused.value)
    assert raw_and_log(shop_with_data) == before


def test_every_bad_row_is_written_to_the_rejected_rows_file(
    shop_with_data: Warehouse, tmp_path: Path
) -> None:
    folder = small_tables(tmp_path / "bad")
    bad_rows = [[300 + n, 1, f"2026-13-{n:02d}", "completed"] for n in range(1, 31)]
    write_csv(folder / "orders.csv", ORDERS_HEADER, bad_rows)

    with pytest.raises(ImportRefused, match="30 bad rows") as refused:
        land(shop_with_data, folder, tmp_path)

    rejected = tmp_path / "rejected" / "rejected_rows.csv"
    assert str(rejected) in str(refused.value)
    lines = rejected.read_text().splitlines()
    assert lines[0] == "file,line,column,reason,value"
    assert len(lines) == 31 and lines[1].startswith("orders.csv,2,order_date,not a date")


def test_a_parquet_column_of_the_wrong_type_is_refused(warehouse: Warehouse, tmp_path: Path):
    path = tmp_path / "orders.parquet"
    pq.write_table(
        pa.table(
            {"customer_id": [True, False], "order_date": ["2026-01-01"] * 2, "amount": [1, 2]}
        ),
        path,
    )
    with pytest.raises(ImportRefused, match=r"orders\.parquet row 1, column customer_id"):
        land(warehouse, path, tmp_path)


def test_the_simulation_refuses_a_warehouse_holding_imported_data(
    shop_with_data: Warehouse,
) -> None:
    before = raw_and_log(shop_with_data)
    with landing_transaction(shop_with_data) as conn:
        foreign = foreign_raw_data(conn)
        state = read_landed_state(conn)

    with pytest.raises(GenerationError) as refused:
        plan_generation(state, as_of=AS_OF, foreign_data=foreign, **SHOP)

    assert "raw holds 4 orders imported from a shop's exports" in str(refused.value)
    assert "--replace-raw" in str(refused.value) and "\n" not in str(refused.value)
    assert raw_and_log(shop_with_data) == before
    replacing = plan_generation(state, as_of=AS_OF, foreign_data=foreign, replace_raw=True, **SHOP)
    assert replacing.replace_all


def test_an_import_refuses_a_simulated_shop_unless_told_to_replace_it(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    from churn.simulation.landing import land_files

    plan = simulated_exports(tmp_path / "simulated", AS_OF)
    land_files(warehouse, plan, tmp_path / "simulated")
    before = raw_and_log(warehouse)

    with pytest.raises(ImportRefused, match="raw holds a simulated shop"):
        land(warehouse, small_tables(tmp_path / "real"), tmp_path)
    assert raw_and_log(warehouse) == before

    result = land(warehouse, tmp_path / "real", tmp_path, replace_raw=True)
    assert result.note and "replaced a simulated shop" in result.note
    with warehouse.connect() as conn:
        assert conn.execute("select count(*) from raw.orders").fetchone()[0] == 4
        assert conn.execute("select count(*) from simulation.shop").fetchone()[0] == 0


def test_the_contract_of_the_readme_is_the_code_s(project_root: Path) -> None:
    """Every column of the raw contract appears in the README's table of it."""
    readme = (project_root / "README.md").read_text()
    section = readme[readme.index("## Your own shop's data") :]
    for table, columns in TABLE_COLUMNS.items():
        assert f"`{table}`" in section, table
        for column in columns:
            assert f"`{column.name}`" in section, (table, column.name)


def test_files_not_named_after_a_table_are_ignored(warehouse: Warehouse, tmp_path: Path) -> None:
    folder = small_tables(tmp_path / "good")
    shutil.copy(folder / "orders.csv", folder / "notes.csv")
    assert land(warehouse, folder, tmp_path).files == [
        "customers.csv",
        "order_items.csv",
        "orders.csv",
        "products.csv",
    ]
