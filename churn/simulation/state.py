"""What the simulation keeps in the warehouse beside `raw`: the shop it simulates, the
window it has landed, and each customer's true dropout date.

The `simulation` schema is never read by the dbt models: the true dropout dates are
there to measure the churn rule and the predictions against.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass

import psycopg

from churn.warehouse.raw import raw_order_count, read_raw_owner

SIMULATION_DDL = """
create schema if not exists simulation;
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


def ensure_simulation_schema(conn: psycopg.Connection) -> None:
    conn.execute(SIMULATION_DDL)


@dataclass(frozen=True)
class LandedState:
    """The simulated shop's settings and the window of days landed so far."""

    settings: Mapping[str, object]
    landed_from: dt.date
    landed_until: dt.date


def read_landed_state(conn: psycopg.Connection) -> LandedState | None:
    """What the simulation has landed so far, or None for an empty warehouse."""
    ensure_simulation_schema(conn)
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


def record_landing(
    conn: psycopg.Connection,
    settings: Mapping[str, object],
    landed_from: dt.date,
    landed_until: dt.date,
) -> None:
    """Remember the shop's settings and widen the landed window to [from, until)."""
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


def foreign_raw_data(conn: psycopg.Connection) -> str | None:
    """What raw holds that the simulation did not land, in a few words; None if nothing."""
    owner = read_raw_owner(conn)
    if owner == "simulation":
        return None
    orders = raw_order_count(conn)
    if orders == 0:
        return None
    if owner == "import":
        return f"raw holds {orders:,} orders imported from a shop's exports"
    return f"raw holds {orders:,} orders that the simulation did not land"


def forget_simulation(conn: psycopg.Connection) -> None:
    """Empty the simulation schema (a new shop replaces the old one)."""
    conn.execute("truncate simulation.customer_lifecycles, simulation.shop")
