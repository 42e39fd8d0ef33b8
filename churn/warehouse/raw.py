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
from typing import TYPE_CHECKING, Literal, cast

import psycopg

from churn.redaction import first_line, redact
from churn.warehouse.connection import Warehouse, WarehouseUnavailable

if TYPE_CHECKING:
    import pyarrow as pa

LANDING_LOCK_KEY = 7_311_202_601  # advisory lock held while raw is being replaced
RAW_TABLES = ("customers", "products", "orders", "order_items", "cancellations")
# Set (local to the transaction) by the pipeline's own landings, which record what they
# change themselves; any other write to raw is recorded by the triggers as an outside
# change of unknown extent.
LANDING_SETTING = "churn.landing"

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
        unit_price numeric(12, 2), line_amount numeric(14, 2)
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


# Columns added to the contract after its first version, for warehouses made before.
RAW_ADDED_COLUMNS = {"order_items": "line_amount numeric(14, 2)"}

# Every write to raw that is not one of the pipeline's landings is recorded, so the next
# build knows that rows it had read may have changed (and rebuilds). Statement-level
# triggers without transition tables: a bulk load pays one function call, not one a row.
CHANGE_CAPTURE_DDL = f"""
create schema if not exists landing;
create table if not exists landing.raw_changes (
    change_id bigserial primary key,
    recorded_at timestamptz not null default now(),
    origin text not null check (origin in ('import', 'outside')),
    table_name text not null,
    first_day date,
    changed_rows bigint,
    note text
);
create table if not exists landing.raw_owner (
    id boolean primary key default true check (id),
    owner text not null check (owner in ('simulation', 'import')),
    since timestamptz not null default now()
);
-- security definer: a writer without rights on the landing schema is still recorded
create or replace function landing.record_outside_change() returns trigger
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
begin
    if coalesce(current_setting('{LANDING_SETTING}', true), '') = '' then
        insert into landing.raw_changes (origin, table_name, note)
        values ('outside', tg_table_name, lower(tg_op));
    end if;
    return null;
end
$$
"""


def ensure_raw_layer(conn: psycopg.Connection) -> None:
    """Create the raw schema, its tables, indexes and change capture if missing."""
    conn.execute("create schema if not exists raw")
    for table, columns in RAW_DDL.items():
        conn.execute(f"create table if not exists raw.{table} ({columns})")
    for table, column in RAW_ADDED_COLUMNS.items():
        conn.execute(f"alter table raw.{table} add column if not exists {column}")
    for name, target in RAW_INDEXES.items():
        conn.execute(f"create index if not exists {name} on {target}")
    conn.execute(CHANGE_CAPTURE_DDL)
    for table in RAW_TABLES:
        conn.execute(
            f"create or replace trigger {table}_outside_changes "
            f"after insert or update or delete or truncate on raw.{table} "
            "for each statement execute function landing.record_outside_change()"
        )


def raw_layer_exists(conn: psycopg.Connection) -> bool:
    """Whether every raw table exists (someone may have made them without a landing)."""
    row = conn.execute(
        "select count(*) from pg_tables where schemaname = 'raw' and tablename = any(%s)",
        (list(RAW_TABLES),),
    ).fetchone()
    return row is not None and row[0] == len(RAW_TABLES)


RawOwner = Literal["simulation", "import"]


def read_raw_owner(conn: psycopg.Connection) -> RawOwner | None:
    """Which source landed what raw holds; None when raw is empty or was filled otherwise.

    A warehouse made before owners were recorded counts as the simulation's when the
    simulation's own record of it exists.
    """
    if raw_order_count(conn) == 0:
        return None
    row = conn.execute("select owner from landing.raw_owner").fetchone()
    if row is not None:
        return cast(RawOwner, row[0])
    simulated = (
        conn.execute(
            "select 1 from pg_tables where schemaname = 'simulation' and tablename = 'shop'"
        ).fetchone()
        and conn.execute("select 1 from simulation.shop").fetchone()
    )
    return "simulation" if simulated else None


def record_raw_owner(conn: psycopg.Connection, owner: RawOwner) -> None:
    conn.execute(
        """
        insert into landing.raw_owner (id, owner, since) values (true, %s, now())
        on conflict (id) do update set owner = excluded.owner,
            since = case when landing.raw_owner.owner = excluded.owner
                then landing.raw_owner.since else now() end
        """,
        (owner,),
    )


def raw_order_count(conn: psycopg.Connection) -> int:
    """How many orders raw holds (0 when the raw layer does not exist yet)."""
    if not raw_layer_exists(conn):
        return 0
    row = conn.execute("select count(*) from raw.orders").fetchone()
    return int(row[0]) if row else 0


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
            # This landing records what it changes itself (see CHANGE_CAPTURE_DDL).
            conn.execute("select set_config(%s, 'on', true)", (LANDING_SETTING,))
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


def csv_rows(rows: pa.Table) -> pa.Buffer:
    """Arrow rows in the CSV format COPY reads, without a header.

    Strings are quoted (a name can hold a comma) and nulls left empty, which COPY reads as
    NULL. Arrow is imported here, by the landings that write rows, not by every reader
    of raw.
    """
    import pyarrow as pa
    import pyarrow.csv as pa_csv

    sink = pa.BufferOutputStream()
    options = pa_csv.WriteOptions(include_header=False, quoting_style="needed")
    pa_csv.write_csv(rows, sink, options)
    return sink.getvalue()


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
