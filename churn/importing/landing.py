"""Landing checked export rows in `raw`: staged, cross-checked, then merged, all or nothing.

Inside one landing transaction (serialised by the landing lock) the rows are copied into
temporary tables, checked against each other and against what raw already holds (keys,
references, an order before its customer's signup, a cancellation before its order),
and merged: a row whose key is new is added, a row that differs from the stored one
replaces it, an identical row changes nothing. So importing the same files twice
changes nothing, and a later export with more days adds them. What changed, and from
which day, is recorded for the next dbt build, which rebuilds when rows it had already
read have changed.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

import psycopg

from churn.importing.contract import ImportRefused
from churn.importing.files import Rejection
from churn.importing.tables import SOURCE_FILE, SOURCE_LINE, ImportTables
from churn.warehouse.raw import (
    RAW_TABLES,
    copy_csv,
    csv_rows,
    raw_order_count,
    read_raw_owner,
    record_raw_owner,
)

LEDGER_DDL = """
create table if not exists landing.imports (
    import_id bigserial primary key,
    imported_at timestamptz not null default now(),
    source text not null,
    form text not null,
    rows_read jsonb not null,
    rows_changed jsonb not null,
    first_changed_day date
)
"""

# The raw tables' columns, in order, as an import stages and compares them.
RAW_COLUMNS: dict[str, tuple[str, ...]] = {
    "customers": ("customer_id", "name", "email", "signup_date", "signed_up_at"),
    "products": ("product_id", "name", "category", "cost", "price"),
    "orders": ("order_id", "customer_id", "order_date", "ordered_at", "status"),
    "order_items": (
        "order_id",
        "line_number",
        "product_id",
        "quantity",
        "unit_price",
        "line_amount",
    ),
    "cancellations": ("order_id", "cancel_reason", "cancelled_at"),
}
KEYS = {
    "customers": ("customer_id",),
    "products": ("product_id",),
    "orders": ("order_id",),
    "order_items": ("order_id", "line_number"),
    "cancellations": ("order_id",),
}


@dataclass
class Landed:
    """What an import changed in raw: rows per table, and the first day they concern."""

    changed: dict[str, int] = field(default_factory=dict)
    first_day: dt.date | None = None
    history_unknown: list[str] = field(default_factory=list)  # tables changed on any day

    def note(self, table: str, rows: int, first_day: dt.date | None) -> None:
        if rows:
            self.changed[table] = self.changed.get(table, 0) + rows
        if first_day is not None:
            self.first_day = min(self.first_day or first_day, first_day)


def prepare_raw(conn: psycopg.Connection, replace_raw: bool) -> str | None:
    """Make room for an import: refuse a simulated shop unless told to replace it.

    Returns a note when raw was emptied.
    """
    conn.execute(LEDGER_DDL)
    owner = read_raw_owner(conn)
    if owner != "simulation":
        return None
    orders = raw_order_count(conn)
    if not replace_raw:
        raise ImportRefused(
            f"raw holds a simulated shop ({orders:,} orders); an import never mixes a "
            "shop's data into it: import into another warehouse, or replace the simulated "
            "shop with --replace-raw"
        )
    conn.execute(f"truncate {', '.join(f'raw.{table}' for table in RAW_TABLES)}")
    conn.execute(
        "insert into landing.raw_changes (origin, table_name, note) "
        "values ('import', 'orders', 'a simulated shop replaced by an import')"
    )
    has_simulation = conn.execute(
        "select 1 from pg_tables where schemaname = 'simulation' and tablename = 'shop'"
    ).fetchone()
    if has_simulation:
        conn.execute("truncate simulation.shop, simulation.customer_lifecycles")
    return f"replaced a simulated shop of {orders:,} orders (--replace-raw)"


def stage(conn: psycopg.Connection, tables: ImportTables) -> None:
    """Copy the import's rows into temporary tables shaped like raw's, with their source."""
    for table in RAW_TABLES:
        conn.execute(
            f"create temp table incoming_{table} (like raw.{table}, "
            f"{SOURCE_FILE} text, {SOURCE_LINE} bigint) on commit drop"
        )
        rows = tables.tables.get(table)
        if rows is None or rows.num_rows == 0:
            continue
        columns = (*RAW_COLUMNS[table], SOURCE_FILE, SOURCE_LINE)
        copy_csv(
            conn, f"incoming_{table}", columns, csv_rows(rows.select(list(columns))), header=False
        )
    if "customers" in tables.derived:
        # a customer's signup is their first order, in this import or already landed
        conn.execute(
            """
            insert into incoming_customers (customer_id, name, email, signup_date, signed_up_at)
            select
                incoming.customer_id, stored.name, stored.email,
                least(stored.signup_date, incoming.first_order_date), stored.signed_up_at
            from (
                select customer_id, min(order_date) as first_order_date
                from incoming_orders group by customer_id
            ) as incoming
            left join raw.customers as stored on stored.customer_id = incoming.customer_id
            """
        )
    for table in RAW_TABLES:
        conn.execute(f"analyze incoming_{table}")


def _duplicates(table: str, what: str) -> str:
    key = ", ".join(KEYS[table])
    shown = " || '/' || ".join(f"{column}::text" for column in KEYS[table])
    return f"""
        select {SOURCE_FILE}, {SOURCE_LINE}, '{key}', 'the same {what} is on more than one row',
            {shown}
        from (
            select *, count(*) over (partition by {key}) as copies from incoming_{table}
        ) as keyed
        where copies > 1 and {SOURCE_FILE} is not null
    """


def _unknown(table: str, column: str, parent: str, parent_key: str, what: str) -> str:
    return f"""
        select child.{SOURCE_FILE}, child.{SOURCE_LINE}, '{column}',
            'no such {what} (not in this import nor already landed)', child.{column}::text
        from incoming_{table} as child
        where child.{SOURCE_FILE} is not null
            and not exists (
                select 1 from incoming_{parent} as given where given.{parent_key} = child.{column}
            )
            and not exists (
                select 1 from raw.{parent} as stored where stored.{parent_key} = child.{column}
            )
    """


def _before_parent(
    table: str, column: str, parent: str, key: str, parent_column: str, reason: str
) -> str:
    """Rows dated before their parent's date (the parent from the import, else from raw).

    Joins, not a lookup per row: the staged tables have no index, and a million orders
    would each read every staged customer.
    """
    return f"""
        select child.{SOURCE_FILE}, child.{SOURCE_LINE}, '{column}',
            '{reason} (' || coalesce(given.{parent_column}, stored.{parent_column})::text
            || ')', child.{column}::text
        from incoming_{table} as child
        left join incoming_{parent} as given on given.{key} = child.{key}
        left join raw.{parent} as stored on stored.{key} = child.{key}
        where child.{column} < coalesce(given.{parent_column}, stored.{parent_column})
    """


CHECKS_SQL = [
    _duplicates("customers", "customer_id"),
    _duplicates("products", "product_id"),
    _duplicates("orders", "order_id"),
    _duplicates("order_items", "order line (order_id and line_number)"),
    _duplicates("cancellations", "cancelled order"),
    _unknown("orders", "customer_id", "customers", "customer_id", "customer"),
    _unknown("order_items", "order_id", "orders", "order_id", "order"),
    _unknown("order_items", "product_id", "products", "product_id", "product"),
    _unknown("cancellations", "order_id", "orders", "order_id", "order"),
    _before_parent(
        "orders",
        "order_date",
        "customers",
        "customer_id",
        "signup_date",
        "before its customer signed up",
    ),
    _before_parent(
        "cancellations",
        "cancelled_at",
        "orders",
        "order_id",
        "ordered_at",
        "before its order was placed",
    ),
]


def check(conn: psycopg.Connection) -> list[Rejection]:
    """The rules that need all rows at once, or raw: every breach, by file and line."""
    rejections = []
    for sql in CHECKS_SQL:
        for file, line, column, reason, value in conn.execute(sql).fetchall():
            rejections.append(Rejection(file, line, column, reason, value))
    return sorted(rejections, key=lambda r: (r.file, r.line or 0, r.column))


def _compared(table: str, alias: str) -> str:
    return ", ".join(f"{alias}.{column}" for column in RAW_COLUMNS[table])


def _merge_rows(
    conn: psycopg.Connection, table: str, day: str | None, only_new: bool
) -> tuple[int, Any]:
    """Add new rows and replace differing ones; returns (rows changed, the first day of
    the rows changed, by the `day` column, old value or new)."""
    keys = KEYS[table]
    joined = " and ".join(f"stored.{key} = given.{key}" for key in keys)
    differs = (
        "false"
        if only_new
        else (
            f"row({_compared(table, 'given')}) is distinct from row({_compared(table, 'stored')})"
        )
    )
    conn.execute(
        f"""
        create temp table changed_{table} on commit drop as
        select given.*, stored.{keys[0]} is null as is_new,
            {f"stored.{day}" if day else "null::date"} as stored_day
        from incoming_{table} as given
        left join raw.{table} as stored on {joined}
        where stored.{keys[0]} is null or {differs}
        """
    )
    conn.execute(
        f"delete from raw.{table} as stored using changed_{table} as given "
        f"where {joined} and not given.is_new"
    )
    columns = ", ".join(RAW_COLUMNS[table])
    conn.execute(f"insert into raw.{table} ({columns}) select {columns} from changed_{table}")
    given_day = day or "null::date"
    row = conn.execute(
        f"select count(*), least(min({given_day}), min(stored_day)) from changed_{table}"
    ).fetchone()
    assert row is not None
    return int(row[0]), row[1]


def _merge_order_lines(conn: psycopg.Connection, raw_was_empty: bool) -> tuple[int, Any]:
    """Replace the lines of every order whose set of lines differs from the stored one."""
    columns = ", ".join(RAW_COLUMNS["order_items"])
    if raw_was_empty:
        conn.execute(
            "create temp table changed_line_orders on commit drop as "
            "select distinct order_id from incoming_order_items"
        )
    else:
        lines = "row(line_number, product_id, quantity, unit_price, line_amount)::text"
        conn.execute(
            f"""
            create temp table changed_line_orders on commit drop as
            with given as (
                select order_id, array_agg({lines} order by line_number) as lines
                from incoming_order_items group by order_id
            ),
            stored as (
                select order_id, array_agg({lines} order by line_number) as lines
                from raw.order_items
                where order_id in (select given.order_id from given)
                group by order_id
            )
            select given.order_id
            from given left join stored on stored.order_id = given.order_id
            where stored.lines is distinct from given.lines
            """
        )
    conn.execute(
        "delete from raw.order_items where order_id in (select order_id from changed_line_orders)"
    )
    inserted = conn.execute(
        f"insert into raw.order_items ({columns}) select {columns} from incoming_order_items "
        "where order_id in (select order_id from changed_line_orders)"
    ).rowcount
    row = conn.execute(
        """
        select min(orders.order_date) from changed_line_orders as changed
        inner join raw.orders as orders on orders.order_id = changed.order_id
        """
    ).fetchone()
    return inserted, row[0] if row else None


def merge(conn: psycopg.Connection, tables: ImportTables) -> Landed:
    """Merge the staged rows into raw (see the module's docstring)."""
    landed = Landed()
    raw_was_empty = raw_order_count(conn) == 0
    derived = tables.derived
    # Derived customers only ever move a signup earlier; derived products only add.
    landed.note("customers", *_merge_rows(conn, "customers", "signup_date", False))
    products_changed, _ = _merge_rows(conn, "products", None, "products" in derived)
    if products_changed:
        landed.changed["products"] = products_changed
        replaced = conn.execute("select count(*) from changed_products where not is_new").fetchone()
        if replaced and replaced[0]:
            # a product's name or price is part of every week it sold in
            landed.history_unknown.append("products")
    landed.note("orders", *_merge_rows(conn, "orders", "order_date", False))
    landed.note("order_items", *_merge_order_lines(conn, raw_was_empty))
    if "cancellations" in tables.tables:
        cancelled, _ = _merge_rows(conn, "cancellations", None, False)
        row = conn.execute(
            """
            select min(orders.order_date) from changed_cancellations as changed
            inner join raw.orders as orders on orders.order_id = changed.order_id
            """
        ).fetchone()
        landed.note("cancellations", cancelled, row[0] if row else None)
    return landed


def record(conn: psycopg.Connection, source: str, tables: ImportTables, landed: Landed) -> None:
    """Record the import in the ledger, its changes for the next build, and raw's owner."""
    for table, rows in landed.changed.items():
        unknown = table in landed.history_unknown
        conn.execute(
            """
            insert into landing.raw_changes (origin, table_name, first_day, changed_rows, note)
            values ('import', %s, %s, %s, %s)
            """,
            (table, None if unknown else landed.first_day, rows, f"import of {source}"),
        )
    conn.execute(
        """
        insert into landing.imports (source, form, rows_read, rows_changed, first_changed_day)
        values (%s, %s, %s, %s, %s)
        """,
        (
            source,
            tables.form,
            json.dumps({name: table.num_rows for name, table in tables.tables.items()}),
            json.dumps(landed.changed),
            landed.first_day,
        ),
    )
    record_raw_owner(conn, "import")
    if landed.changed:
        conn.execute(f"analyze {', '.join(f'raw.{table}' for table in landed.changed)}")
