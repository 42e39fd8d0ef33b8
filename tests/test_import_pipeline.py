"""A shop's own data end to end: imported files give the marts the simulation gives, any
dates report, changed history is rebuilt, partial weeks are said, refusals are one line."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from churn.settings import RunParameters
from churn.settings.environment import temporary_environment
from churn.warehouse.connection import Warehouse
from flows.dbt_build import EMPTY_RAW
from flows.main import churn_pipeline
from tests.churn_reference import churn_weekly_reference, read_raw
from tests.exports import SHOP, next_exports, one_file_export, simulated_exports, write_csv
from tests.reliability import block_names, table_fingerprints
from tests.test_dbt_models import BUILT_TABLES, mart_checksums, read_mart

from .conftest import save_warehouse_block

pytestmark = pytest.mark.slow

AS_OF = dt.date(2026, 11, 23)
ROOT = Path(__file__).resolve().parent.parent


def run(warehouse: Warehouse, tmp_path: Path, **values: Any) -> Any:
    """The parent flow on `warehouse` (a block of its own), dry-run delivery; its state."""
    names = block_names("import")
    save_warehouse_block(warehouse, names["warehouse_block"])
    params = RunParameters(**{**SHOP, "dbt_node_tasks": False, **names, **values})
    with temporary_environment({"CHURN_REPORTS_DIR": str(tmp_path / "reports")}):
        return churn_pipeline(params, return_state=True)


def report_text(tmp_path: Path, as_of: dt.date) -> str:
    return (tmp_path / "reports" / as_of.isoformat() / "report.txt").read_text()


def test_imported_files_give_the_marts_the_simulation_gives_row_for_row(
    prefect_test_server: str, make_warehouse: Any, tmp_path: Path
) -> None:
    simulated, imported = make_warehouse("simulated"), make_warehouse("imported")
    week_before = AS_OF - dt.timedelta(days=7)
    # the simulation's own path: history, then the next week
    assert run(simulated, tmp_path, as_of=week_before).is_completed()
    assert run(simulated, tmp_path, as_of=AS_OF).is_completed()
    # the same shop as export files: the history's files, then the week's
    history = simulated_exports(tmp_path / "history", week_before)
    next_exports(tmp_path / "week", history, AS_OF)
    first = run(imported, tmp_path, as_of=week_before, source=f"files:{tmp_path / 'history'}")
    assert first.is_completed(), first.message
    second = run(imported, tmp_path, as_of=AS_OF, source=f"files:{tmp_path / 'week'}")
    assert second.is_completed(), second.message

    assert table_fingerprints(imported, "raw") == table_fingerprints(simulated, "raw")
    assert mart_checksums(imported) == mart_checksums(simulated)
    assert len(BUILT_TABLES) > 10


def test_one_file_of_order_lines_gives_the_same_churn_and_order_figures(
    prefect_test_server: str, make_warehouse: Any, tmp_path: Path
) -> None:
    simulated, imported = make_warehouse("simulated"), make_warehouse("one_file")
    simulated_exports(tmp_path / "tables", AS_OF)
    path = one_file_export(tmp_path / "tables", tmp_path / "order_lines.csv")
    assert run(simulated, tmp_path, as_of=AS_OF).is_completed()
    state = run(imported, tmp_path, as_of=AS_OF, source=f"files:{path}")
    assert state.is_completed(), state.message

    churn_imported = {row["week_end"]: row for row in read_mart(imported, "churn_weekly")}
    churn_simulated = read_mart(simulated, "churn_weekly")
    # the one-file form has no signups without orders: its weeks start at the first order
    common = [row for row in churn_simulated if row["week_end"] in churn_imported]
    assert len(common) >= len(churn_simulated) - 2 and len(common) > 10
    for row in common:
        assert churn_imported[row["week_end"]] == row
    figures = "week_end, orders_placed, orders_cancelled, revenue, cancellation_rate"
    with imported.connect() as left, simulated.connect() as right:
        query = f"select {figures} from marts.kpi_weekly where week_end = %s"
        assert left.execute(query, (AS_OF,)).fetchone() == right.execute(query, (AS_OF,)).fetchone()


def test_a_changed_row_in_a_past_week_is_rebuilt_by_an_ordinary_rerun(
    prefect_test_server: str, warehouse: Warehouse, tmp_path: Path
) -> None:
    assert run(warehouse, tmp_path, as_of=AS_OF).is_completed()
    past_week = AS_OF - dt.timedelta(days=35)
    with warehouse.connect() as conn:
        revenue_before = conn.execute(
            "select revenue from marts.kpi_weekly where week_end = %s", (past_week,)
        ).fetchone()[0]
        # a price corrected by hand in raw, on a completed order of that week
        conn.execute(
            """
            update raw.order_items set unit_price = unit_price + 10
            where (order_id, line_number) = (
                select items.order_id, min(items.line_number) from raw.order_items as items
                inner join raw.orders using (order_id)
                where status = 'completed' and order_date >= %s and order_date < %s
                group by items.order_id order by items.order_id limit 1
            )
            """,
            (past_week - dt.timedelta(days=7), past_week),
        )
        recorded = conn.execute(
            "select count(*) from landing.raw_changes where origin = 'outside'"
        ).fetchone()[0]
    assert recorded == 1

    rerun = run(warehouse, tmp_path, as_of=AS_OF)

    assert rerun.is_completed(), rerun.message
    with warehouse.connect() as conn:
        revenue_after = conn.execute(
            "select revenue from marts.kpi_weekly where week_end = %s", (past_week,)
        ).fetchone()[0]
    assert revenue_after > revenue_before  # quantity x 10 more


def test_a_history_from_1997_reports_correctly_for_an_as_of_date_in_1998(
    prefect_test_server: str, warehouse: Warehouse, tmp_path: Path
) -> None:
    as_of = dt.date(1998, 6, 1)
    simulated_exports(tmp_path / "tables", as_of, history_days=500)
    path = one_file_export(tmp_path / "tables", tmp_path / "cdnow_like.parquet")

    state = run(warehouse, tmp_path, as_of=as_of, source=f"files:{path}")

    assert state.is_completed(), state.message
    expected = churn_weekly_reference(read_raw(warehouse), as_of).to_dict("records")
    actual = read_mart(warehouse, "churn_weekly")
    assert len(actual) == len(expected) > 60
    for mart_row, reference_row in zip(actual, expected, strict=True):
        for column in ("week_end", "active_end", "churned_in_week", "new_in_week"):
            assert mart_row[column] == reference_row[column], (mart_row["week_end"], column)
    assert "Week: May 25, 1998 \u2013 May 31, 1998" in report_text(tmp_path, as_of)


def test_a_week_whose_data_ends_mid_week_is_reported_as_partial(
    prefect_test_server: str, warehouse: Warehouse, tmp_path: Path
) -> None:
    simulated_exports(tmp_path / "tables", AS_OF, customers=2000)
    lines = one_file_export(tmp_path / "tables", tmp_path / "all_lines.csv").read_text()
    header, *rows = lines.splitlines()
    tuesday = (AS_OF - dt.timedelta(days=6)).isoformat()  # the week is Monday to Sunday
    kept = [row for row in rows if row.split(",")[2].strip('"') <= tuesday]
    path = tmp_path / "ends_on_tuesday.csv"
    path.write_text("\n".join([header, *kept]) + "\n")

    state = run(warehouse, tmp_path, as_of=AS_OF, source=f"files:{path}")

    assert state.is_completed(), state.message
    text = report_text(tmp_path, AS_OF)
    assert "Partial week: the data ends on Nov 17, 2026, so 2 of its 7 days are covered" in text


def test_an_empty_raw_layer_fails_in_one_line_saying_what_to_do(
    prefect_test_server: str, warehouse: Warehouse, tmp_path: Path
) -> None:
    state = run(warehouse, tmp_path, as_of=AS_OF, source="raw")

    assert state.is_failed() and state.message == EMPTY_RAW
    assert "import your shop's exports with --source files:PATH" in EMPTY_RAW


def test_the_command_line_refuses_bad_files_in_one_line_without_a_traceback(
    prefect_test_server: str, warehouse: Warehouse, tmp_path: Path
) -> None:
    names = block_names("cli")
    save_warehouse_block(warehouse, names["warehouse_block"])
    bad = write_csv(
        tmp_path / "orders.csv",
        ["customer_id", "order_date", "amount"],
        [[1, "2026-11-02", "9.90"], [2, "yesterday", "5.00"]],
    )
    env = {
        **os.environ,
        "PREFECT_API_URL": prefect_test_server,
        "CHURN_DATA_DIR": str(tmp_path / "data"),
    }
    before = table_fingerprints(warehouse, "raw")

    result = subprocess.run(
        [sys.executable, "flows/main.py", "--source", f"files:{bad}", "--as-of", "2026-11-23",
         "--warehouse-block", names["warehouse_block"]],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip

    assert result.returncode == 1, result.stderr[-3000:]
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith("python flows/main.py: import refused, nothing landed: 1 bad row")
    assert "orders.csv line 3, column order_date: not a date" in last_line
    assert "Traceback" not in result.stderr + result.stdout
    assert table_fingerprints(warehouse, "raw") == before
