"""Landing in `raw`: incremental, replace-not-duplicate, all-or-nothing."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import psycopg
import pytest

from churn.simulation.landing import land_files, write_activity_files, write_and_land_activity
from churn.simulation.plan import GenerationError, GenerationPlan, plan_generation
from churn.simulation.state import read_landed_state
from churn.warehouse.connection import Warehouse
from churn.warehouse.progress import LandingProgress
from churn.warehouse.raw import landing_transaction

AS_OF = dt.date(2026, 11, 23)
SHOP = dict(seed=5, customers=500, products=60, history_days=120, locale="en_US")
TABLES = ("customers", "products", "orders", "order_items", "cancellations")


def run_generation(warehouse: Warehouse, as_of: dt.date, tmp_path: Path, **shop) -> GenerationPlan:
    with landing_transaction(warehouse) as conn:
        state = read_landed_state(conn)
    plan = plan_generation(state, as_of=as_of, **{**SHOP, **shop})
    directory = tmp_path / f"{plan.start}_{plan.end}"
    write_activity_files(plan, directory)
    land_files(warehouse, plan, directory)
    return plan


def raw_fingerprint(warehouse: Warehouse) -> dict[str, tuple[int, str]]:
    """Row count and an order-independent checksum of every raw table."""
    fingerprint = {}
    with warehouse.connect() as conn:
        for table in TABLES:
            fingerprint[table] = conn.execute(
                f"select count(*), coalesce(md5(string_agg(t::text, '|' order by t::text)), '') "
                f"from raw.{table} as t"
            ).fetchone()
    return fingerprint


def test_first_run_lands_the_history_then_weekly_runs_extend_it(make_warehouse, tmp_path):
    warehouse = make_warehouse("landing")
    first = run_generation(warehouse, AS_OF - dt.timedelta(days=14), tmp_path)
    assert first.replace_all
    second = run_generation(warehouse, AS_OF, tmp_path)
    assert not second.replace_all
    assert (second.start, second.end) == (AS_OF - dt.timedelta(days=14), AS_OF)
    with warehouse.connect() as conn:
        assert conn.execute("select max(order_date) from raw.orders").fetchone()[0] < AS_OF
        assert (
            conn.execute(
                "select count(*) from raw.orders where order_date >= %s", (second.start,)
            ).fetchone()[0]
            > 0
        )


def test_landing_in_two_steps_equals_landing_at_once(make_warehouse, tmp_path):
    stepwise = make_warehouse("steps")
    first = run_generation(stepwise, AS_OF - dt.timedelta(days=21), tmp_path / "a")
    run_generation(stepwise, AS_OF, tmp_path / "b")
    # the same shop (same settings and epoch) generated over the whole window in one go
    at_once = make_warehouse("once")
    plan = GenerationPlan(first.settings, first.settings.epoch, AS_OF, True, "at once")
    write_activity_files(plan, tmp_path / "c")
    land_files(at_once, plan, tmp_path / "c")
    assert raw_fingerprint(stepwise) == raw_fingerprint(at_once)


def test_rerun_of_a_week_replaces_it_instead_of_duplicating(make_warehouse, tmp_path):
    warehouse = make_warehouse("rerun")
    run_generation(warehouse, AS_OF, tmp_path / "first")
    before = raw_fingerprint(warehouse)
    plan = run_generation(warehouse, AS_OF, tmp_path / "again")
    assert (plan.start, plan.end, plan.replace_all) == (AS_OF - dt.timedelta(days=7), AS_OF, False)
    assert raw_fingerprint(warehouse) == before
    # an earlier week too
    run_generation(warehouse, AS_OF - dt.timedelta(days=28), tmp_path / "older")
    assert raw_fingerprint(warehouse) == before


def test_an_interrupted_landing_leaves_raw_as_it_was(make_warehouse, tmp_path):
    warehouse = make_warehouse("interrupted")
    run_generation(warehouse, AS_OF - dt.timedelta(days=7), tmp_path / "first")
    before = raw_fingerprint(warehouse)
    with landing_transaction(warehouse) as conn:
        state = read_landed_state(conn)
    plan = plan_generation(state, as_of=AS_OF, **SHOP)
    directory = tmp_path / "broken"
    write_activity_files(plan, directory)
    # the order lines file is cut in the middle of a row, as a crash while writing would
    items = directory / "order_items.csv"
    content = items.read_bytes()
    items.write_bytes(content[: len(content) // 2] + b"\n1,2,not-a-number,3,4\n")
    with pytest.raises(psycopg.errors.DataError):
        land_files(warehouse, plan, directory)
    assert raw_fingerprint(warehouse) == before
    with landing_transaction(warehouse) as conn:
        assert read_landed_state(conn).landed_until == AS_OF - dt.timedelta(days=7)


def test_a_different_seed_regenerates_the_whole_history(make_warehouse, tmp_path):
    warehouse = make_warehouse("reseed")
    run_generation(warehouse, AS_OF, tmp_path / "a")
    plan = run_generation(warehouse, AS_OF, tmp_path / "b", seed=6)
    assert plan.replace_all and "seed 5 -> 6" in plan.reason
    with landing_transaction(warehouse) as conn:
        assert read_landed_state(conn).settings["seed"] == 6


def test_an_as_of_date_before_the_shop_opened_is_refused(make_warehouse, tmp_path):
    warehouse = make_warehouse("early")
    run_generation(warehouse, AS_OF, tmp_path)
    with landing_transaction(warehouse) as conn:
        state = read_landed_state(conn)
    with pytest.raises(GenerationError, match="not a full week after the simulated shop opened"):
        plan_generation(state, as_of=AS_OF - dt.timedelta(days=200), **SHOP)


def test_a_landing_reports_its_progress_up_to_every_customer(make_warehouse, tmp_path):
    warehouse = make_warehouse("progress")
    plan = plan_generation(None, as_of=AS_OF, **{**SHOP, "customers": 20_000})
    calls: list[tuple[int, int]] = []
    write_and_land_activity(warehouse, plan, tmp_path, progress=lambda *call: calls.append(call))
    with warehouse.connect() as conn:
        known = conn.execute("select count(*) from simulation.customer_lifecycles").fetchone()[0]
    done = [call[0] for call in calls]
    assert len(calls) > 1 and done == sorted(done)
    assert calls[-1] == (known, known)


def test_landing_progress_logs_a_few_lines_or_draws_a_bar(caplog, capsys):
    import logging

    logger = logging.getLogger("tests.landing")
    logged = LandingProgress(logger, interactive=False, quiet_seconds=0)
    with caplog.at_level(logging.INFO, logger="tests.landing"):
        for done in range(0, 1001, 50):
            logged(done, 1000)
    assert [record.getMessage().split(" (")[0] for record in caplog.records] == [
        "Landing: 25%",
        "Landing: 50%",
        "Landing: 75%",
    ]
    # quiet while the landing is short: nothing at all
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="tests.landing"):
        quiet = LandingProgress(logger, interactive=False, quiet_seconds=3600)
        for done in range(0, 1001, 50):
            quiet(done, 1000)
    assert caplog.records == []
    drawn = LandingProgress(logger, interactive=True, quiet_seconds=0)
    drawn(500, 1000)
    drawn(1000, 1000)
    err = capsys.readouterr().err
    assert "\rLanding [" in err and " 50% 500/1,000 customers" in err
    assert err.endswith("100% 1,000/1,000 customers\n")
