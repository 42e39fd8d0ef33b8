"""What a warehouse remembers about its builds, and the lock that keeps them one at a time."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from collections.abc import Iterator

from churn.build.commands import LastBuild
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
alter table reporting.dbt_build_settings add column if not exists as_of_date date
"""

logger = logging.getLogger(__name__)


def read_last_build(warehouse: Warehouse) -> LastBuild | None:
    """The last successful build's settings, or None if the models were never built."""
    with warehouse.connect() as conn:
        conn.execute(_BUILD_SETTINGS_DDL)
        row = conn.execute(
            "select churn_window_days, as_of_date from reporting.dbt_build_settings"
        ).fetchone()
    return None if row is None else LastBuild(churn_window_days=row[0], as_of=row[1])


def record_build(warehouse: Warehouse, churn_window_days: int, as_of: dt.date) -> None:
    """Remember a successful build's churn window and as-of date."""
    with warehouse.connect() as conn:
        conn.execute(_BUILD_SETTINGS_DDL)
        conn.execute(
            """
            insert into reporting.dbt_build_settings (id, churn_window_days, as_of_date, built_at)
            values (true, %s, %s, now())
            on conflict (id) do update
            set churn_window_days = excluded.churn_window_days,
                as_of_date = excluded.as_of_date,
                built_at = now()
            """,
            (churn_window_days, as_of),
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
