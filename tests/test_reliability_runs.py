"""Runs repeated and runs at the same time: the same marts, one delivery, no duplicates."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from churn.delivery import ledger
from churn.warehouse.connection import Warehouse
from tests.reliability import (
    FAST_DELIVERY_ENV,
    NEXT_WEEK,
    SHOP,
    Kind,
    ReliabilityCase,
    output_environment,
    run_pipeline,
    table_fingerprints,
)
from tests.telegram_fake import DEFAULT_CHAT_ID, FakeTelegramServer

from .conftest import register_blocks

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("reliability_env")]

ROOT = Path(__file__).resolve().parent.parent
RAW_TABLES = ("customers", "products", "orders", "order_items", "cancellations")


@pytest.fixture
def warehouse_and_blocks(
    reliability_warehouse: Warehouse, telegram_server: FakeTelegramServer
) -> tuple[Warehouse, dict[str, str]]:
    """A copy of the template (NEXT_WEEK landed, not built) and blocks naming it and the fake."""
    warehouse = reliability_warehouse
    return warehouse, register_blocks(warehouse, telegram_server, "runs")


def assert_one_delivery(warehouse: Warehouse, server: FakeTelegramServer) -> None:
    sent = server.messages
    assert [message.method for message in sent].count("sendPhoto") == 1, sent
    assert ledger.deliveries_for(warehouse, NEXT_WEEK) == [
        (DEFAULT_CHAT_ID, "sent", [message.message_id for message in sent])
    ]


def test_the_same_week_run_three_times_gives_identical_marts_and_one_delivery(
    warehouse_and_blocks: tuple[Warehouse, dict[str, str]],
    telegram_server: FakeTelegramServer,
    reliability: Callable[[Kind], ReliabilityCase],
) -> None:
    case = reliability("fault")
    warehouse, names = warehouse_and_blocks

    results, marts, raw = [], [], []
    for _ in range(3):
        state = run_pipeline(names, NEXT_WEEK)
        assert state.is_completed(), state.message
        results.append(state.result())
        marts.append(table_fingerprints(warehouse, "marts"))
        raw.append(table_fingerprints(warehouse, "raw"))

    assert results[0].startswith(f"telegram chat {DEFAULT_CHAT_ID}, messages 1, 2")
    assert results[1:] == ["already sent", "already sent"]
    assert marts[0] == marts[1] == marts[2]
    assert {"churn_weekly", "kpi_weekly", "orders", "customers"} <= set(marts[0])
    assert all(count > 0 for count, _ in marts[0].values())
    assert raw[0] == raw[1] == raw[2]
    assert_one_delivery(warehouse, telegram_server)
    case.survived()


def start_cli_run(
    names: dict[str, str], env: dict[str, str], log: Path
) -> tuple[subprocess.Popen[bytes], Path]:
    """`python flows/main.py` for NEXT_WEEK with the suite's shop, output to `log`."""
    args = [
        sys.executable,
        "flows/main.py",
        "--as-of",
        NEXT_WEEK.isoformat(),
        "--customers",
        str(SHOP["customers"]),
        "--products",
        str(SHOP["products"]),
        "--history-days",
        str(SHOP["history_days"]),
        "--seed",
        str(SHOP["seed"]),
        "--warehouse-block",
        names["warehouse_block"],
        "--telegram-block",
        names["telegram_block"],
    ]
    with log.open("wb") as output:
        process = subprocess.Popen(args, cwd=ROOT, env=env, stdout=output, stderr=output)
    return process, log


def test_two_runs_started_together_neither_interleave_their_landing_nor_send_twice(
    warehouse_and_blocks: tuple[Warehouse, dict[str, str]],
    telegram_server: FakeTelegramServer,
    prefect_test_server: str,
    tmp_path: Path,
    reliability: Callable[[Kind], ReliabilityCase],
) -> None:
    case = reliability("fault")
    warehouse, names = warehouse_and_blocks
    raw_before = table_fingerprints(warehouse, "raw")
    env = {
        **os.environ,
        **output_environment(tmp_path),
        **FAST_DELIVERY_ENV,
        "PREFECT_API_URL": prefect_test_server,
    }

    runs = [start_cli_run(names, env, tmp_path / f"run-{number}.log") for number in (1, 2)]
    codes = [process.wait(timeout=600) for process, _ in runs]
    outputs = [log.read_text(errors="replace") for _, log in runs]

    assert codes == [0, 0], "\n\n".join(output[-4000:] for output in outputs)
    # The week was landed twice, one landing after the other: the rows are those of
    # one landing, none twice.
    assert table_fingerprints(warehouse, "raw") == raw_before
    with warehouse.connect() as conn:
        for table in RAW_TABLES:
            total, distinct = conn.execute(
                f"select count(*), count(distinct t::text) from raw.{table} as t"
            ).fetchone()
            assert total == distinct, f"raw.{table} holds duplicate rows"
    assert_one_delivery(warehouse, telegram_server)
    assert sum("already sent" in output for output in outputs) == 1, outputs
    case.survived()
