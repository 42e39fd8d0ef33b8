"""Warehouse access: which PostgreSQL to use, how to connect, and landing raw data.

A run uses the `SqlAlchemyConnector` block it is given; an ad hoc run without that block
falls back to an embedded PostgreSQL (pgserver) kept under the project's data folder. A
deployment run never falls back: a missing block there is an error.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

PROJECT_ROOT = Path(__file__).resolve().parent.parent
EMBEDDED_DATABASE = "warehouse"
LANDING_LOCK_KEY = 7_311_202_601  # advisory lock held while raw is being replaced
CONNECT_ATTEMPTS = 3

logger = logging.getLogger(__name__)


def data_dir() -> Path:
    """Where generated files and the embedded warehouse live (gitignored)."""
    return Path(os.environ.get("CHURN_DATA_DIR", PROJECT_ROOT / ".data")).resolve()


class WarehouseUnavailable(RuntimeError):
    """The warehouse could not be reached after a few attempts."""


class MissingWarehouseBlock(RuntimeError):
    """A deployment run was asked for a block that does not exist."""


@dataclass(frozen=True)
class Warehouse:
    """Connection settings for one PostgreSQL database; the password never prints."""

    host: str
    port: int
    user: str
    database: str
    password: str | None = field(default=None, repr=False)
    origin: str = "block"

    def display_url(self) -> str:
        """A connection string without the password, safe for logs."""
        if self.host.startswith("/"):
            return f"postgresql://{self.user}@/{self.database}?host={self.host}&port={self.port}"
        return f"postgresql://{self.user}@{self.host}:{self.port}/{self.database}"

    def connect(self, *, autocommit: bool = False) -> psycopg.Connection:
        """Open a connection, retrying a few times: a warehouse can be briefly unreachable."""
        delay = 1.0
        for attempt in range(1, CONNECT_ATTEMPTS + 1):
            try:
                return psycopg.connect(
                    host=self.host,
                    port=self.port,
                    user=self.user,
                    password=self.password or None,
                    dbname=self.database,
                    connect_timeout=10,
                    autocommit=autocommit,
                    application_name="churn-pipeline",
                )
            except psycopg.OperationalError as error:
                reason = _redact(str(error).strip().splitlines()[0], self.password)
                if attempt == CONNECT_ATTEMPTS:
                    raise WarehouseUnavailable(
                        f"cannot reach the warehouse at {self.display_url()} after "
                        f"{CONNECT_ATTEMPTS} attempts: {reason}"
                    ) from None
                logger.warning(
                    "Warehouse not reachable (attempt %d of %d): %s",
                    attempt,
                    CONNECT_ATTEMPTS,
                    reason,
                )
                time.sleep(delay)
                delay *= 2
        raise AssertionError("unreachable")

    def dbt_env(self) -> dict[str, str]:
        """Environment variables that dbt's profiles.yml reads (the password as a dbt secret)."""
        return {
            "CHURN_WAREHOUSE_HOST": self.host,
            "CHURN_WAREHOUSE_PORT": str(self.port),
            "CHURN_WAREHOUSE_USER": self.user,
            "CHURN_WAREHOUSE_DATABASE": self.database,
            "DBT_ENV_SECRET_WAREHOUSE_PASSWORD": self.password or "",
        }


def _redact(text: str, secret: str | None) -> str:
    return text.replace(secret, "***") if secret else text


def warehouse_from_url(url: str, origin: str = "block") -> Warehouse:
    """Build a Warehouse from a SQLAlchemy or libpq URL (postgresql[+driver]://...)."""
    from sqlalchemy.engine.url import make_url

    parsed = make_url(url)
    query = dict(parsed.query)
    host = parsed.host or query.get("host") or "localhost"
    return Warehouse(
        host=str(host),
        port=int(parsed.port or query.get("port") or 5432),
        user=parsed.username or "postgres",
        password=parsed.password,
        database=parsed.database or "postgres",
        origin=origin,
    )


def warehouse_from_block(block_name: str) -> Warehouse | None:
    """Load the named SqlAlchemyConnector block, or None if there is no such block."""
    from prefect_sqlalchemy import SqlAlchemyConnector

    try:
        connector = SqlAlchemyConnector.load(block_name, _sync=True)
    except ValueError as error:
        if "Unable to find block document" in str(error):
            return None
        raise
    info = connector.connection_info
    if isinstance(info, str):
        return warehouse_from_url(info, origin=f"block '{block_name}'")
    password = info.password.get_secret_value() if info.password else None
    query = info.query or {}
    return Warehouse(
        host=info.host or query.get("host") or "localhost",
        port=int(info.port or query.get("port") or 5432),
        user=info.username or "postgres",
        password=password,
        database=info.database or "postgres",
        origin=f"block '{block_name}'",
    )


def embedded_warehouse(directory: Path | None = None) -> Warehouse:
    """Start (or reuse) the embedded PostgreSQL and make sure its database exists.

    The server is left running when the process ends, so the next run and a SQL client
    can reuse it; `python -m flows.warehouse stop` stops it.
    """
    import pgserver

    directory = directory or data_dir() / "warehouse"
    directory.parent.mkdir(parents=True, exist_ok=True)
    # pgserver's own logger is chatty at INFO; its messages are not ours to show.
    logging.getLogger("pgserver").setLevel(logging.WARNING)
    server = pgserver.get_server(directory, cleanup_mode=None)
    base = warehouse_from_url(
        server.get_uri("postgres"), origin=f"embedded PostgreSQL in {directory}"
    )
    admin = Warehouse(
        host=base.host, port=base.port, user=base.user, database="postgres", origin=base.origin
    )
    with admin.connect(autocommit=True) as conn:
        exists = conn.execute(
            "select 1 from pg_database where datname = %s", (EMBEDDED_DATABASE,)
        ).fetchone()
        if not exists:
            conn.execute(f'create database "{EMBEDDED_DATABASE}"')
    return Warehouse(
        host=base.host,
        port=base.port,
        user=base.user,
        database=EMBEDDED_DATABASE,
        origin=base.origin,
    )


def in_deployment_run() -> bool:
    from prefect.runtime import deployment

    return deployment.id is not None


def resolve_warehouse(block_name: str) -> Warehouse:
    """The block's warehouse; the embedded one for ad hoc runs without that block."""
    warehouse = warehouse_from_block(block_name)
    if warehouse is not None:
        return warehouse
    if in_deployment_run():
        raise MissingWarehouseBlock(
            f"no SqlAlchemyConnector block named '{block_name}': create it with "
            "`python -m blocks` before running the deployment"
        )
    return embedded_warehouse()


# -- raw layer ------------------------------------------------------------------------------

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

SIMULATION_DDL = """
create table if not exists simulation.shop (
    id boolean primary key default true check (id),
    settings jsonb not null,
    landed_from date not null,
    landed_until date not null,
    updated_at timestamptz not null default now()
);
create table if not exists simulation.customer_lifecycles (
    customer_id bigint primary key,
    purchase_rate_per_day double precision,
    dropout_probability double precision,
    dropout_date date
);
"""


def ensure_raw_layer(conn: psycopg.Connection) -> None:
    """Create the raw and simulation schemas and tables if they do not exist yet."""
    conn.execute("create schema if not exists raw")
    conn.execute("create schema if not exists simulation")
    for table, columns in RAW_DDL.items():
        conn.execute(f"create table if not exists raw.{table} ({columns})")
    conn.execute(SIMULATION_DDL)
    # A weekly run reads the lines and cancellations of the week's orders (the landing
    # replaces them on a rerun; dbt builds and checks them): by order, not by full scans.
    conn.execute("create index if not exists orders_order_date_idx on raw.orders (order_date)")
    # ... and the tests of the week's rows look their parents up (relationships, uniqueness)
    conn.execute("create index if not exists orders_order_id_idx on raw.orders (order_id)")
    conn.execute(
        "create index if not exists customers_customer_id_idx on raw.customers (customer_id)"
    )
    conn.execute(
        "create index if not exists order_items_order_id_idx on raw.order_items (order_id)"
    )
    conn.execute(
        "create index if not exists cancellations_order_id_idx on raw.cancellations (order_id)"
    )


@dataclass(frozen=True)
class LandedState:
    settings: Mapping[str, object]
    landed_from: dt.date
    landed_until: dt.date


def read_landed_state(conn: psycopg.Connection) -> LandedState | None:
    """What the simulation has landed so far, or None for an empty warehouse."""
    row = conn.execute(
        """
        select settings, landed_from, landed_until
        from simulation.shop
        where exists (select 1 from raw.orders)
        """
    ).fetchone()
    if row is None:
        return None
    return LandedState(settings=row[0], landed_from=row[1], landed_until=row[2])


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
        first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
        reason = _redact(first_line, warehouse.password)
        raise WarehouseUnavailable(
            f"lost the connection to the warehouse at {warehouse.display_url()} while "
            f"landing raw data ({reason}); the landing was rolled back, raw is unchanged: "
            "run again"
        ) from error


def clear_raw_window(conn: psycopg.Connection, start: dt.date | None, end: dt.date | None) -> None:
    """Delete raw rows of [start, end), or everything when no window is given."""
    if start is None or end is None:
        conn.execute(
            "truncate raw.customers, raw.orders, raw.order_items, raw.cancellations, "
            "raw.products, simulation.customer_lifecycles, simulation.shop"
        )
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


def record_landing(
    conn: psycopg.Connection,
    settings: Mapping[str, object],
    landed_from: dt.date,
    landed_until: dt.date,
) -> None:
    conn.execute(
        """
        insert into simulation.shop (id, settings, landed_from, landed_until, updated_at)
        values (true, %s, %s, %s, now())
        on conflict (id) do update
        set settings = excluded.settings,
            landed_from = least(simulation.shop.landed_from, excluded.landed_from),
            landed_until = greatest(simulation.shop.landed_until, excluded.landed_until),
            updated_at = now()
        """,
        (json.dumps(dict(settings)), landed_from, landed_until),
    )


def stop_embedded(directory: Path | None = None) -> bool:
    """Stop the embedded PostgreSQL if it runs; True if it was running."""
    from pgserver._commands import pg_ctl
    from pgserver.utils import PostmasterInfo

    directory = (directory or data_dir() / "warehouse").resolve()
    info = PostmasterInfo.read_from_pgdata(directory) if directory.exists() else None
    if info is None or not info.is_running():
        return False
    user = "pgserver" if os.geteuid() == 0 else None
    pg_ctl(["-w", "stop", "-m", "fast"], pgdata=directory, user=user)
    return True


def _main(argv: list[str] | None = None) -> int:
    """`python -m flows.warehouse url|psql|stop`: open or stop the embedded warehouse."""
    import argparse
    import subprocess

    parser = argparse.ArgumentParser(
        prog="python -m flows.warehouse", description="The embedded warehouse of ad hoc runs."
    )
    parser.add_argument("command", choices=("url", "psql", "stop"))
    command = parser.parse_args(argv).command
    if command == "stop":
        print("stopped" if stop_embedded() else "not running")
        return 0
    warehouse = embedded_warehouse()
    if command == "url":
        print(warehouse.display_url())
        return 0
    from pgserver._commands import POSTGRES_BIN_PATH

    return subprocess.call(
        [
            str(POSTGRES_BIN_PATH / "psql"),
            "-h",
            warehouse.host,
            "-p",
            str(warehouse.port),
            "-U",
            warehouse.user,
            warehouse.database,
        ]
    )


if __name__ == "__main__":
    raise SystemExit(_main())
