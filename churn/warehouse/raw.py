"""The raw layer: the tables every source lands in, one landing at a time, with COPY.

`raw` holds the shop's exports exactly as landed; dbt declares these tables as its
sources. A landing replaces a window of `raw` inside one transaction, serialised
across runs (and machines) by an advisory lock in the warehouse itself.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import psycopg

from churn.redaction import first_line, redact
from churn.warehouse.connection import Warehouse, WarehouseUnavailable

LANDING_LOCK_KEY = 7_311_202_601  # advisory lock held while raw is being replaced
RAW_TABLES = ("customers", "products", "orders", "order_items", "cancellations")

RAW_DDL = {
    "customers": """
        customer_id bigint, name text, email text, signup_date date, signed_up_at timestamp
    """,
    "products": """
        product_id bigint, name text, category text, cost numeric(12, 2), price numeric(12, 2)
    """,
    "orders": """
        order_id bigint, customer_id bigint, order_date date, ordered_at timestamp, status text
    """,
    "order_items": """
        order_id bigint, line_number integer, product_id bigint, quantity integer,
        unit_price numeric(12, 2)
    """,
    "cancellations": "order_id bigint, cancel_reason text, cancelled_at timestamp",
}

# A weekly run reads the lines and cancellations of the week's orders (a landing replaces
# them on a rerun; dbt builds and checks them) by order, not by full scans; the tests of
# the week's rows look their parents up (relationships, uniqueness) by key.
RAW_INDEXES = {
    "orders_order_date_idx": "raw.orders (order_date)",
    "orders_order_id_idx": "raw.orders (order_id)",
    "customers_customer_id_idx": "raw.customers (customer_id)",
    "order_items_order_id_idx": "raw.order_items (order_id)",
    "cancellations_order_id_idx": "raw.cancellations (order_id)",
}


def ensure_raw_layer(conn: psycopg.Connection) -> None:
    """Create the raw schema, its tables and indexes if they do not exist yet."""
    conn.execute("create schema if not exists raw")
    for table, columns in RAW_DDL.items():
        conn.execute(f"create table if not exists raw.{table} ({columns})")
    for name, target in RAW_INDEXES.items():
        conn.execute(f"create index if not exists {name} on {target}")


@contextlib.contextmanager
def landing_transaction(warehouse: Warehouse) -> Iterator[psycopg.Connection]:
    """One transaction for a whole landing, serialised across runs by an advisory lock.

    A connection lost on the way (a restart, a network cut, a terminated backend) makes
    PostgreSQL roll the whole transaction back, so raw stays as it was: the error says
    that, naming the warehouse, rather than surfacing as a bare driver error.
    """
    conn = warehouse.connect()
    try:
        with conn, conn.transaction():
            conn.execute("select pg_advisory_xact_lock(%s)", (LANDING_LOCK_KEY,))
            ensure_raw_layer(conn)
            yield conn
    except psycopg.OperationalError as error:
        if not conn.broken:
            raise
        reason = redact(first_line(str(error)) or type(error).__name__, [warehouse.password])
        raise WarehouseUnavailable(
            f"lost the connection to the warehouse at {warehouse.display_url()} while "
            f"landing raw data ({reason}); the landing was rolled back, raw is unchanged: "
            "run again"
        ) from error


def clear_raw_window(conn: psycopg.Connection, start: dt.date | None, end: dt.date | None) -> None:
    """Delete raw rows of [start, end), or everything when no window is given."""
    if start is None or end is None:
        conn.execute(f"truncate {', '.join(f'raw.{table}' for table in RAW_TABLES)}")
        return
    window = {"start": start, "end": end}
    in_window = (
        "select order_id from raw.orders where order_date >= %(start)s and order_date < %(end)s"
    )
    conn.execute(f"delete from raw.order_items where order_id in ({in_window})", window)
    conn.execute(f"delete from raw.cancellations where order_id in ({in_window})", window)
    conn.execute(
        "delete from raw.orders where order_date >= %(start)s and order_date < %(end)s", window
    )
    conn.execute(
        "delete from raw.customers where signup_date >= %(start)s and signup_date < %(end)s", window
    )


def drop_secondary_indexes(conn: psycopg.Connection, schema: str = "raw") -> list[str]:
    """Drop a schema's indexes (not those backing a constraint); returns their DDL.

    Loading into emptied tables and building each index once at the end is much faster
    than maintaining the indexes row by row.
    """
    indexes = conn.execute(
        """
        select index_info.indexrelid::regclass::text, pg_get_indexdef(index_info.indexrelid)
        from pg_index as index_info
        inner join pg_class as indexed_table on indexed_table.oid = index_info.indrelid
        where indexed_table.relnamespace = %s::regnamespace
            and not exists (
                select 1 from pg_constraint where pg_constraint.conindid = index_info.indexrelid
            )
        """,
        (schema,),
    ).fetchall()
    for name, _ in indexes:
        conn.execute(f"drop index {name}")
    return [definition for _, definition in indexes]


# psycopg hands libpq at most 128 KiB at a time and copies any larger chunk into slices
# that size: reading files in such slices spares that copy.
COPY_BUFFER_BYTES = 128 * 1024


def copy_csv(
    conn: psycopg.Connection,
    table: str,
    columns: tuple[str, ...],
    source: Path | bytes | memoryview,
    *,
    header: bool = True,
    freeze: bool = False,
) -> int:
    """COPY CSV rows, from a file or from bytes in memory, into a table; returns the rows copied.

    `freeze` stores the rows already frozen, which spares the first reader (dbt) from
    rewriting every page to set hint bits; PostgreSQL allows it only on a table created
    or truncated in the current transaction.
    """
    options = ["format csv", f"header {str(header).lower()}"]
    if freeze:
        options.append("freeze true")
    statement = f"copy {table} ({', '.join(columns)}) from stdin with ({', '.join(options)})"
    with conn.cursor() as cursor:
        with cursor.copy(statement) as copy:
            if isinstance(source, Path):
                with source.open("rb") as file:
                    while chunk := file.read(COPY_BUFFER_BYTES):
                        copy.write(chunk)
            else:
                # psycopg slices a large buffer itself; a memoryview's slices are not copies.
                copy.write(memoryview(source))
        return cursor.rowcount
