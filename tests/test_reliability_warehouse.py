"""Warehouse faults: unreachable at the start, lost in the middle of landing."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Callable

import psycopg
import pytest

from churn.warehouse.connection import Warehouse, WarehouseUnavailable
from tests.reliability import (
    NEXT_WEEK,
    Kind,
    ReliabilityCase,
    block_names,
    execute,
    run_pipeline,
    state_error,
    table_fingerprints,
)
from tests.telegram_fake import FakeTelegramServer

from .conftest import register_blocks, save_warehouse_block

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("reliability_env")]


def closed_port() -> int:
    """A port nothing listens on: bound, then released."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_an_unreachable_warehouse_fails_clearly_after_bounded_retries(
    telegram_server: FakeTelegramServer, reliability: Callable[[Kind], ReliabilityCase]
) -> None:
    case = reliability("fault")
    password = f"pw-SECRET-{uuid.uuid4().hex[:8]}"
    port = closed_port()
    nowhere = Warehouse(
        host="127.0.0.1", port=port, user="postgres", database="shop", password=password
    )
    names = register_blocks(nowhere, telegram_server, "unreachable")

    started = time.monotonic()
    state = run_pipeline(names, NEXT_WEEK)
    elapsed = time.monotonic() - started

    error = state_error(state)
    assert isinstance(error, WarehouseUnavailable), repr(error)
    message = str(error)
    assert f"postgresql://postgres@127.0.0.1:{port}/shop" in message
    assert "after 3 attempts" in message
    assert elapsed < 30, f"gave up only after {elapsed:.0f} s"
    [alert] = telegram_server.messages
    alert_text = alert.plain_text or ""
    assert "Churn pipeline failed" in alert_text and "warehouse connection" in alert_text
    for text in (message, repr(error), state.message or "", alert_text):
        assert password not in text
    case.failed_clearly()


# Makes each COPY into raw.orders wait inside the statement, so the landing is still
# running when the test pulls the plug (a small shop lands in well under a second).
SLOW_COPY_DDL = """
create function raw.slow_down_landing() returns trigger language plpgsql as $$
begin
    perform pg_sleep(60);
    return null;
end
$$;
create trigger slow_down_landing before insert on raw.orders
for each statement execute function raw.slow_down_landing();
"""


class LandingKiller(threading.Thread):
    """Waits until the pipeline COPYs into raw.orders in `database`, then terminates it.

    The landing COPYs products and customers first (small and fast); the orders COPY is
    the one the trigger slows down, so it is the one to catch in the middle.
    """

    def __init__(self, admin: Warehouse, database: str) -> None:
        super().__init__(name="landing-killer", daemon=True)
        self.admin = admin
        self.database = database
        self.terminated_query: str | None = None
        self.stop = threading.Event()

    def run(self) -> None:
        with self.admin.connect(autocommit=True) as conn:
            while not self.stop.wait(0.05):
                row = conn.execute(
                    """
                    select pid, query from pg_stat_activity
                    where datname = %s and application_name = 'churn-pipeline'
                        and state = 'active' and query ilike 'copy raw.orders %%'
                    """,
                    (self.database,),
                ).fetchone()
                if row is not None:
                    conn.execute("select pg_terminate_backend(%s)", (row[0],))
                    self.terminated_query = row[1]
                    return


def test_a_warehouse_lost_during_landing_leaves_raw_unchanged_and_the_next_run_succeeds(
    postgres_admin: Warehouse,
    reliability_warehouse: Warehouse,
    reliability: Callable[[Kind], ReliabilityCase],
) -> None:
    case = reliability("fault")
    warehouse = reliability_warehouse
    names = block_names("lost-landing")  # no Telegram block: a dry run, no alert
    save_warehouse_block(warehouse, names["warehouse_block"])
    before = {schema: table_fingerprints(warehouse, schema) for schema in ("raw", "simulation")}
    execute(warehouse, SLOW_COPY_DDL)
    killer = LandingKiller(postgres_admin, warehouse.database)
    killer.start()

    # A rerun of the landed week: the landing deletes the week, then COPYs it again.
    try:
        state = run_pipeline(names, NEXT_WEEK)
    finally:
        killer.stop.set()
        killer.join(timeout=10)

    assert killer.terminated_query is not None, "the landing was never caught in a COPY"
    assert killer.terminated_query.lower().startswith("copy raw.orders")
    error = state_error(state)
    assert "landing" in str(error) and "unchanged" in str(error), repr(error)
    assert isinstance(error, WarehouseUnavailable | psycopg.OperationalError), repr(error)
    execute(warehouse, "drop function raw.slow_down_landing() cascade")
    after = {schema: table_fingerprints(warehouse, schema) for schema in ("raw", "simulation")}
    assert after == before, "the lost landing changed raw"

    again = run_pipeline(names, NEXT_WEEK)

    assert again.is_completed(), again.message
    with warehouse.connect() as conn:
        row = conn.execute(
            "select active_end from marts.churn_weekly where week_end = %s", (NEXT_WEEK,)
        ).fetchone()
    assert row is not None
    case.failed_clearly()
