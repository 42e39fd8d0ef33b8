"""From export files to the five raw tables, every value checked by the contract.

The result holds each table's rows with the raw layer's columns and, for each row, the
file and line it came from (so the checks that need the warehouse, run later in SQL,
can still point at the line). Tables the files do not hold are derived: customers from
their orders (in SQL, since a customer's signup is their first order in all of raw),
products from the order lines, none for cancellations.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from churn.hashing import combine
from churn.importing.contract import (
    DATA_SUFFIXES,
    ONE_FILE_COLUMNS,
    ONE_OF,
    REQUIRED_TABLES,
    TABLE_COLUMNS,
    Column,
)
from churn.importing.files import (
    FileRejected,
    InputFile,
    Rejection,
    missing_columns,
    parse_values,
    read_input_file,
    rejections_of,
)

SOURCE_FILE = "source_file"
SOURCE_LINE = "source_line"
RAW_TYPES: dict[str, pa.DataType] = {
    "id": pa.int64(),
    "count": pa.int64(),
    "amount": pa.string(),  # kept as written; PostgreSQL reads it into numeric
    "date": pa.date32(),
    "timestamp": pa.timestamp("s"),
    "text": pa.string(),
    "status": pa.string(),
}
MAX_ID = (1 << 63) - 1


@dataclass
class ImportTables:
    """The raw tables an import lands, and what it could not accept."""

    form: str  # "tables" (the full contract) or "one file"
    files: list[str]
    tables: dict[str, pa.Table] = field(default_factory=dict)
    derived: set[str] = field(default_factory=set)
    rejections: list[Rejection] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return sum(table.num_rows for table in self.tables.values())


def locate_files(path: Path) -> tuple[str, dict[str, Path]]:
    """Which form the path holds, and its files: (form, {table or "orders": path})."""
    if not path.exists():
        raise FileRejected(Rejection(str(path), None, "", "no such file or folder"))
    if path.is_file():
        if path.suffix.lower() not in DATA_SUFFIXES:
            raise FileRejected(Rejection(path.name, None, "", "is not a .csv or .parquet file"))
        return "one file", {"orders": path}
    found: dict[str, Path] = {}
    for file in sorted(path.iterdir()):
        table = file.stem.lower()
        if file.suffix.lower() in DATA_SUFFIXES and table in TABLE_COLUMNS:
            if table in found:
                raise FileRejected(
                    Rejection(file.name, None, "", f"a second file for the {table} table")
                )
            found[table] = file
    if found:
        missing = [table for table in REQUIRED_TABLES if table not in found]
        if missing:
            raise FileRejected(
                Rejection(
                    str(path),
                    None,
                    "",
                    f"no {' or '.join(missing)} file (.csv or .parquet) beside "
                    f"{', '.join(file.name for file in found.values())}",
                )
            )
        return "tables", found
    data_files = [file for file in sorted(path.iterdir()) if file.suffix.lower() in DATA_SUFFIXES]
    if len(data_files) == 1:
        return "one file", {"orders": data_files[0]}
    raise FileRejected(
        Rejection(
            str(path),
            None,
            "",
            "holds neither the raw tables (orders.csv, order_items.csv, ...) nor a single "
            "file of orders",
        )
    )


def _parse(
    file: InputFile, columns: Sequence[Column]
) -> tuple[dict[str, pa.Array], list[Rejection]]:
    """The file's columns of the contract, parsed; missing optional ones are left out."""
    rejections = missing_columns(file, columns)
    if rejections:
        return {}, rejections
    parsed: dict[str, pa.Array] = {}
    for column in columns:
        if column.name not in file.rows.column_names:
            continue
        original = file.rows.column(column.name).combine_chunks()
        values = parse_values(original, column)
        rejections += rejections_of(file, column, values, original)
        parsed[column.name] = values.values
    return parsed, rejections


def _with_source(columns: dict[str, pa.Array], file: InputFile) -> pa.Table:
    rows = len(next(iter(columns.values())))
    return pa.table(
        {
            **columns,
            SOURCE_FILE: pa.array([file.name] * rows, pa.string()),
            SOURCE_LINE: pa.array(file.positions(), pa.int64()),
        }
    )


def _raw_table(table: str, values: dict[str, pa.Array], rows: int) -> dict[str, pa.Array]:
    """The raw table's columns in their order, empty where the file did not give one."""
    return {
        column.name: values.get(column.name, pa.nulls(rows, RAW_TYPES[column.kind]))
        for column in TABLE_COLUMNS[table]
    }


def _line_numbers(order_ids: np.ndarray) -> np.ndarray:
    """1, 2, ... in the file's order within each order."""
    order = np.lexsort((np.arange(len(order_ids)), order_ids))
    sorted_ids = order_ids[order]
    starts = np.r_[True, sorted_ids[1:] != sorted_ids[:-1]]
    group_start = np.maximum.accumulate(np.where(starts, np.arange(len(order_ids)), 0))
    numbers = np.empty(len(order_ids), dtype=np.int64)
    numbers[order] = np.arange(len(order_ids)) - group_start + 1
    return numbers


def read_tables(path: Path) -> ImportTables:
    """Read and check the full contract's files, or the one-file form, into raw tables."""
    form, files = locate_files(path)
    result = ImportTables(form=form, files=[file.name for file in files.values()])
    if form == "one file":
        _one_file(read_input_file(files["orders"]), result)
        return result
    for table, file_path in files.items():
        file = read_input_file(file_path)
        values, rejections = _parse(file, TABLE_COLUMNS[table])
        result.rejections += rejections
        if rejections:
            continue
        if table == "order_items" and "line_number" not in values:
            values["line_number"] = pa.array(
                _line_numbers(values["order_id"].to_numpy(zero_copy_only=False))
            )
        result.tables[table] = _with_source(_raw_table(table, values, file.rows.num_rows), file)
    if not result.rejections:
        if "customers" not in result.tables:
            result.derived.add("customers")
        if "products" not in result.tables:
            items = result.tables["order_items"]
            prices = pc.cast(items.column("unit_price"), pa.float64())
            result.tables["products"] = _products_of(items, prices, None)
            result.derived.add("products")
    return result


def _products_of(items: pa.Table, unit_prices: pa.Array, names: dict[int, str] | None) -> pa.Table:
    """Products seen in the order lines: the highest unit price paid as their price."""
    grouped = (
        pa.table({"product_id": items.column("product_id"), "price": unit_prices})
        .group_by("product_id", use_threads=False)
        .aggregate([("price", "max")])
    )
    ids = grouped.column("product_id").to_pylist()
    prices = [f"{price:.2f}" for price in grouped.column("price_max").to_pylist()]
    rows = len(ids)
    return pa.table(
        {
            "product_id": pa.array(ids, pa.int64()),
            "name": pa.array([(names or {}).get(pid) for pid in ids], pa.string()),
            "category": pa.nulls(rows, pa.string()),
            "cost": pa.nulls(rows, pa.string()),
            "price": pa.array(prices, pa.string()),
            SOURCE_FILE: pa.nulls(rows, pa.string()),
            SOURCE_LINE: pa.nulls(rows, pa.int64()),
        }
    )


def stable_id(text: str) -> int:
    """A positive 63-bit id for a name: the same on every import, every machine."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big") >> 1


def _one_file(file: InputFile, result: ImportTables) -> None:
    """Derive orders, order lines and products from one file of orders or order lines."""
    present = set(file.rows.column_names)
    for choices in ONE_OF:
        if not present & set(choices):
            result.rejections.append(
                Rejection(file.name, None, "", f"the file has no {' or '.join(choices)} column")
            )
    values, rejections = _parse(file, ONE_FILE_COLUMNS)
    result.rejections += rejections
    if result.rejections:
        return
    rows = file.rows.num_rows
    day = values.get("order_date")
    if day is None:
        day = values["ordered_at"].cast(pa.date32())
    quantity = values.get("quantity", pa.array(np.ones(rows, dtype=np.int64)))
    quantity = pc.fill_null(quantity, 1)
    status = pc.fill_null(values.get("status", pa.nulls(rows, pa.string())), "completed")
    products, names = _product_ids(values.get("product"), rows)
    if "amount" in values:
        line_amount = values["amount"]
        unit_price = pc.divide(pc.cast(line_amount, pa.float64()), pc.cast(quantity, pa.float64()))
    else:
        unit_price = pc.cast(values["unit_price"], pa.float64())
        line_amount = pc.multiply(unit_price, pc.cast(quantity, pa.float64()))
    unit_number = pc.round(unit_price, 2)
    order_id = values.get("order_id")
    if order_id is None:
        order_id = _row_order_ids(values["customer_id"], day, line_amount, quantity, products)
    customer = values["customer_id"]
    result.rejections += _conflicting_orders(file, order_id, customer, day, status)
    if result.rejections:
        return
    order_numbers = order_id.to_numpy(zero_copy_only=False)
    lines = pa.table(
        {
            "order_id": order_id,
            "line_number": pa.array(_line_numbers(order_numbers)),
            "product_id": products,
            "quantity": quantity,
            "unit_price": pc.cast(unit_number, pa.string()),
            "line_amount": pc.cast(pc.cast(line_amount, pa.float64()), pa.string()),
            SOURCE_FILE: pa.array([file.name] * rows, pa.string()),
            SOURCE_LINE: pa.array(file.positions(), pa.int64()),
        }
    )
    ordered_at = values.get("ordered_at", pa.nulls(rows, pa.timestamp("s")))
    per_order = (
        pa.table(
            {
                "order_id": order_id,
                "customer_id": customer,
                "order_date": day,
                "ordered_at": ordered_at,
                "status": status,
                SOURCE_LINE: pa.array(file.positions(), pa.int64()),
            }
        )
        .group_by("order_id", use_threads=False)
        .aggregate(
            [
                ("customer_id", "min"),
                ("order_date", "min"),
                ("ordered_at", "min"),
                ("status", "min"),
                (SOURCE_LINE, "min"),
            ]
        )
    )
    orders_count = per_order.num_rows
    result.tables["orders"] = pa.table(
        {
            "order_id": per_order.column("order_id"),
            "customer_id": per_order.column("customer_id_min"),
            "order_date": per_order.column("order_date_min"),
            "ordered_at": per_order.column("ordered_at_min"),
            "status": per_order.column("status_min"),
            SOURCE_FILE: pa.array([file.name] * orders_count, pa.string()),
            SOURCE_LINE: per_order.column(f"{SOURCE_LINE}_min"),
        }
    )
    result.tables["order_items"] = lines
    result.tables["products"] = _products_of(lines, unit_number, names)
    result.derived |= {"customers", "products"}


def _product_ids(product: pa.Array | None, rows: int) -> tuple[pa.Array, dict[int, str]]:
    """Product ids from the product column: its numbers, or stable ids of its names."""
    if product is None:
        return pa.array(np.zeros(rows, dtype=np.int64)), {0: "(no product given)"}
    filled = pc.fill_null(product, "(no product given)")
    numeric = pc.all(pc.match_substring_regex(filled, r"^[0-9]{1,18}$")).as_py()
    if numeric:
        return filled.cast(pa.int64()), {}
    unique = pc.unique(filled)
    ids = {name: stable_id(name) for name in unique.to_pylist()}
    mapped = pc.index_in(filled, value_set=unique)
    id_array = pa.array([ids[name] for name in unique.to_pylist()], pa.int64())
    return pc.take(id_array, mapped), {value: key for key, value in ids.items()}


def _row_order_ids(
    customer: pa.Array, day: pa.Array, amount: pa.Array, quantity: pa.Array, product: pa.Array
) -> pa.Array:
    """One order per row: ids from the row's content and its rank among identical rows.

    The same row gets the same id in every export, so importing a file again, or a
    longer export of the same shop, finds the orders it already landed.
    """
    cents = np.round(pc.cast(amount, pa.float64()).to_numpy(zero_copy_only=False) * 100)
    keys = [
        customer.to_numpy(zero_copy_only=False).astype(np.int64),
        day.cast(pa.int32()).to_numpy(zero_copy_only=False).astype(np.int64),
        cents.astype(np.int64),
        quantity.to_numpy(zero_copy_only=False).astype(np.int64),
        product.to_numpy(zero_copy_only=False).astype(np.int64),
    ]
    content = combine(*keys)
    order = np.lexsort((np.arange(len(content)), content))
    sorted_content = content[order]
    starts = np.r_[True, sorted_content[1:] != sorted_content[:-1]]
    group_start = np.maximum.accumulate(np.where(starts, np.arange(len(content)), 0))
    rank = np.empty(len(content), dtype=np.int64)
    rank[order] = np.arange(len(content)) - group_start
    ids = combine(content, rank) >> np.uint64(1)
    return pa.array(ids.astype(np.int64))


def _conflicting_orders(
    file: InputFile,
    order_id: pa.Array,
    customer: pa.Array,
    day: pa.Array,
    status: pa.Array,
) -> list[Rejection]:
    """Lines of one order that disagree on its customer, day or status."""
    table = pa.table(
        {
            "order_id": order_id,
            "customer_id": customer,
            "day": day.cast(pa.int32()),
            "status": status,
        }
    )
    grouped = table.group_by("order_id", use_threads=False).aggregate(
        [
            ("customer_id", "count_distinct"),
            ("day", "count_distinct"),
            ("status", "count_distinct"),
        ]
    )
    rejections: list[Rejection] = []
    positions = file.positions()
    for column, reason in (
        ("customer_id", "the lines of one order name different customers"),
        ("day", "the lines of one order have different dates"),
        ("status", "the lines of one order have different statuses"),
    ):
        conflicting = grouped.filter(pc.greater(grouped.column(f"{column}_count_distinct"), 1))
        if conflicting.num_rows == 0:
            continue
        rows = np.flatnonzero(
            np.asarray(
                pc.is_in(order_id, value_set=conflicting.column("order_id")).to_numpy(
                    zero_copy_only=False
                ),
                dtype=bool,
            )
        )
        ids = order_id.to_pylist()
        for row in rows:
            rejections.append(
                Rejection(
                    file.name,
                    int(positions[row]),
                    "order_id" if column != "day" else "order_date",
                    reason,
                    str(ids[row]),
                )
            )
    return rejections
