"""The parent flow end to end in Prefect: real PostgreSQL, real dbt, a fake Bot API."""

from __future__ import annotations

import datetime as dt

import pytest

from churn.delivery import ledger
from churn.report.formatting import format_int, format_money, format_percent
from churn.settings import RunParameters
from flows.main import churn_pipeline
from tests.telegram_fake import DEFAULT_CHAT_ID, DEFAULT_TOKEN

from .conftest import register_blocks

pytestmark = pytest.mark.slow

AS_OF = dt.date(2026, 11, 23)
SMALL_SHOP = dict(customers=600, products=50, history_days=150, seed=9)


@pytest.fixture
def blocks(prefect_test_server, warehouse, telegram_server):
    """A fresh warehouse and the fake chat, registered as blocks with unique names."""
    return warehouse, register_blocks(warehouse, telegram_server, "pipeline")


def run(names: dict[str, str], **values) -> str:
    """The parent flow with the small shop, without per-node dbt tasks unless asked."""
    values = {"dbt_node_tasks": False, **SMALL_SHOP, **names, **values}
    return churn_pipeline(RunParameters(**values))


def week_figures(warehouse) -> dict:
    with warehouse.connect() as conn:
        cursor = conn.execute(
            "select churn.*, kpi.orders_placed, kpi.revenue, kpi.top_product_name "
            "from marts.churn_weekly as churn "
            "join marts.kpi_weekly as kpi using (week_end) where week_end = %s",
            (AS_OF,),
        )
        names = [column.name for column in cursor.description]
        return dict(zip(names, cursor.fetchone(), strict=True))


def test_the_report_arrives_once_with_the_marts_figures(blocks, telegram_server):
    warehouse, names = blocks
    result = run(names, as_of=AS_OF)
    assert result.startswith("telegram chat")

    sent = telegram_server.messages
    assert sent[0].method == "sendPhoto"
    assert sent[0].photo_size and sent[0].photo_size > 1000
    text = "\n".join(m.plain_text for m in sent if m.method == "sendMessage")
    figures = week_figures(warehouse)
    locale = "en_US"
    assert format_percent(float(figures["weekly_churn_rate"]), locale) in text
    assert format_int(figures["active_end"], locale) in text
    assert format_int(figures["orders_placed"], locale) in text
    assert format_money(figures["revenue"], locale) in text
    assert format_money(figures["revenue_at_risk"], locale) in text
    assert figures["top_product_name"] in text

    deliveries = ledger.deliveries_for(warehouse, AS_OF)
    assert [(chat, status) for chat, status, _ in deliveries] == [(DEFAULT_CHAT_ID, "sent")]
    assert deliveries[0][2] == [message.message_id for message in sent]

    # A rerun of the same week sends nothing; --resend sends it again.
    again = run(names, as_of=AS_OF)
    assert again == "already sent"
    assert len(telegram_server.messages) == len(sent)
    run(names, as_of=AS_OF, source="raw", resend=True)
    assert len(telegram_server.messages) == 2 * len(sent)


def test_a_failing_dbt_test_stops_the_run_before_the_report(blocks, telegram_server):
    warehouse, names = blocks
    run(names, as_of=AS_OF - dt.timedelta(days=7))
    delivered = len(telegram_server.messages)
    with warehouse.connect() as conn:
        conn.execute("insert into raw.orders select * from raw.orders order by order_id limit 1")
    with pytest.raises(Exception, match="unique_shop_orders_order_id"):
        run(names, as_of=AS_OF, source="raw")
    # no report, and exactly one alert naming the failing step, with no secret in it
    new_messages = telegram_server.messages[delivered:]
    assert len(new_messages) == 1
    alert = new_messages[0].plain_text
    assert "Churn pipeline failed" in alert
    assert "dbt build" in alert and "unique_shop_orders_order_id" in alert
    assert DEFAULT_TOKEN not in alert and DEFAULT_TOKEN.split(":")[1] not in alert
    assert ledger.deliveries_for(warehouse, AS_OF) == []


def test_dbt_nodes_run_as_prefect_tasks_when_asked(blocks, telegram_server):
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterParentFlowRunId

    _, names = blocks
    state = churn_pipeline(
        RunParameters(as_of=AS_OF, dbt_node_tasks=True, **SMALL_SHOP, **names), return_state=True
    )
    assert state.is_completed()
    flow_run_id = state.state_details.flow_run_id

    async def task_names() -> list[str]:
        # dbt's tasks belong to the build subflow, whose parent is the pipeline's run
        async with get_client() as client:
            runs = await client.read_task_runs(
                flow_run_filter=FlowRunFilter(
                    parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[flow_run_id])
                )
            )
            return [run.name for run in runs]

    from prefect.utilities.asyncutils import run_coro_as_sync

    names_seen = run_coro_as_sync(task_names())
    assert any("churn_weekly" in name for name in names_seen), names_seen[:20]
    assert sum("unique" in name or "not_null" in name for name in names_seen) > 10
