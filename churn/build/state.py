"""What a warehouse remembers about its builds, and the lock that keeps them one at a time."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from collections.abc import Iterator

from churn.build.commands import LastBuild, RawChange
from churn.warehouse.connection import Warehouse
from churn.warehouse.raw import LANDING_LOCK_KEY

BUILD_LOCK_KEY = 7_311_202_602  # advisory lock held while dbt builds a warehouse's models

_BUILD_SETTINGS_DDL = """
create schema if not exists reporting;
create table if not exists reporting.dbt_build_settings (
    id boolean primary key default true check (id),
    churn_window_days integer not null,
    built_at timestamptz not null default now()
);
alter table reporting.dbt_build_settings add column if not exists as_of_date date;
alter table reporting.dbt_build_settings add column if not exists changes_through bigint
"""

logger = logging.getLogger(__name__)


def read_last_build(warehouse: Warehouse) -> LastBuild | None:
    """The last successful build's settings, or None if the models were never built."""
    with warehouse.connect() as conn:
        conn.execute(_BUILD_SETTINGS_DDL)
        row = conn.execute(
            "select churn_window_days, as_of_date, coalesce(changes_through, 0) "
            "from reporting.dbt_build_settings"
        ).fetchone()
    if row is None:
        return None
    return LastBuild(churn_window_days=row[0], as_of=row[1], changes_through=row[2])


def read_raw_changes(warehouse: Warehouse, after: int) -> list[RawChange]:
    """The changes to raw recorded after change `after` (none before raw exists)."""
    with warehouse.connect() as conn:
        exists = conn.execute(
            "select 1 from pg_tables where schemaname = 'landing' and tablename = 'raw_changes'"
        ).fetchone()
        if not exists:
            return []
        rows = conn.execute(
            """
            select change_id, origin, table_name, first_day, changed_rows, note
            from landing.raw_changes where change_id > %s order by change_id
            """,
            (after,),
        ).fetchall()
    return [RawChange(*row) for row in rows]


def record_build(
    warehouse: Warehouse, churn_window_days: int, as_of: dt.date, changes_through: int
) -> None:
    """Remember a successful build's churn window, as-of date and the changes it took in."""
    with warehouse.connect() as conn:
        conn.execute(_BUILD_SETTINGS_DDL)
        conn.execute(
            """
            insert into reporting.dbt_build_settings
                (id, churn_window_days, as_of_date, changes_through, built_at)
            values (true, %s, %s, %s, now())
            on conflict (id) do update
            set churn_window_days = excluded.churn_window_days,
                as_of_date = excluded.as_of_date,
                changes_through = greatest(
                    reporting.dbt_build_settings.changes_through, excluded.changes_through
                ),
                built_at = now()
            """,
            (churn_window_days, as_of, changes_through),
        )


@contextlib.contextmanager
def exclusive_build(
    warehouse: Warehouse, log: logging.Logger | logging.LoggerAdapter = logger
) -> Iterator[None]:
    """Build one warehouse's models one run at a time, on a raw layer that holds still.

    Two builds at once interleave their incremental delete+insert: measured with two
    runs started together, every order line of the week was in marts.order_items twice
    and both runs failed. The shared landing lock makes a landing wait for the build, so
    every statement of a build reads the same raw. Session locks on a connection of our
    own: closing it (at the end, or when the process dies) releases them.
    """
    with warehouse.connect(autocommit=True) as conn:
        granted = conn.execute("select pg_try_advisory_lock(%s)", (BUILD_LOCK_KEY,)).fetchone()
        if not (granted and granted[0]):
            log.info("Another run is building this warehouse's models: waiting")
            conn.execute("select pg_advisory_lock(%s)", (BUILD_LOCK_KEY,))
        conn.execute("select pg_advisory_lock_shared(%s)", (LANDING_LOCK_KEY,))
        yield
