"""Export files for the import tests: a simulated shop's files, in both forms, and by hand."""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from churn.simulation.landing import write_activity_files
from churn.simulation.plan import GenerationPlan, plan_generation
from churn.simulation.state import LandedState

SHOP: dict[str, Any] = dict(seed=17, customers=300, products=30, history_days=120, locale="en_US")


def simulated_exports(directory: Path, as_of: dt.date, **shop: Any) -> GenerationPlan:
    """The simulated shop's whole history up to `as_of`, as the raw tables' CSV files."""
    plan = plan_generation(None, as_of=as_of, **{**SHOP, **shop})
    write_activity_files(plan, directory)
    return plan


def next_exports(directory: Path, previous: GenerationPlan, as_of: dt.date) -> GenerationPlan:
    """The same shop's days from the end of `previous` up to `as_of`, as CSV files."""
    state = LandedState(previous.settings.as_dict(), previous.start, previous.end)
    settings = previous.settings
    plan = plan_generation(
        state,
        as_of=as_of,
        seed=settings.seed,
        customers=settings.customers,
        products=settings.products,
        history_days=settings.history_days,
        locale=settings.locale,
    )
    write_activity_files(plan, directory)
    return plan


def one_file_export(tables_dir: Path, path: Path) -> Path:
    """The same orders as one file, one row per order line: the minimal form."""
    orders = pa_csv.read_csv(tables_dir / "orders.csv")
    lines = pa_csv.read_csv(tables_dir / "order_items.csv")
    joined = lines.join(orders, "order_id")
    amounts = pa.compute.multiply(joined.column("quantity"), joined.column("unit_price"))
    table = pa.table(
        {
            "customer_id": joined.column("customer_id"),
            "order_id": joined.column("order_id"),
            "order_date": joined.column("order_date"),
            "quantity": joined.column("quantity"),
            "amount": pa.compute.round(amounts, 2),
            "status": joined.column("status"),
            "product": joined.column("product_id"),
        }
    )
    if path.suffix == ".parquet":
        pq.write_table(table, path)
    else:
        pa_csv.write_csv(table, path)
    return path


def write_csv(path: Path, header: list[str], rows: list[list[object]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def small_tables(directory: Path) -> Path:
    """A hand-written shop of three customers in the full form, valid in every rule."""
    write_csv(
        directory / "customers.csv",
        ["customer_id", "name", "email", "signup_date"],
        [[1, "Ana", "ana@example.com", "2026-01-02"], [2, "Bo", "", "2026-01-03"],
         [3, "", "", "2026-01-05"]],
    )  # fmt: skip
    write_csv(
        directory / "products.csv",
        ["product_id", "name", "category", "cost", "price"],
        [[10, "Mug", "Home", "2.00", "6.50"], [11, "Tee", "", "", "15.00"]],
    )
    write_csv(
        directory / "orders.csv",
        ["order_id", "customer_id", "order_date", "status"],
        [[100, 1, "2026-01-02", "completed"], [101, 2, "2026-01-04", "cancelled"],
         [102, 1, "2026-02-01", "completed"], [103, 3, "2026-02-03", "Completed"]],
    )  # fmt: skip
    write_csv(
        directory / "order_items.csv",
        ["order_id", "product_id", "quantity", "unit_price"],
        [[100, 10, 2, "6.50"], [100, 11, 1, "15.00"], [101, 10, 1, "6.50"],
         [102, 11, 3, "15.00"], [103, 10, 1, "6.00"]],
    )  # fmt: skip
    return directory
