"""The prediction subflow on real marts: stored predictions, the backtest, the churn
breakdown, and a shop where the model cannot be fitted (Prefect server, dbt builds)."""

from __future__ import annotations

import datetime as dt

import pytest

from churn.build.commands import build_args
from churn.build.invocation import run_dbt
from churn.report.outlook_marts import read_churn_movement, read_prediction_figures
from churn.report.outlook_text import prediction_lines
from churn.settings import RunParameters
from churn.warehouse.connection import Warehouse
from flows.main import churn_pipeline
from flows.prediction import predict_customer_churn

from .conftest import create_database, drop_database, register_blocks, save_warehouse_block
from .test_dbt_models import land_shop

pytestmark = pytest.mark.slow

AS_OF = dt.date(2026, 11, 23)
FOUR_WEEKS_BEFORE = AS_OF - dt.timedelta(weeks=4)
BLOCK = "prediction-flow-warehouse"

PREDICTIONS_SQL = """
select * from prediction.customer_predictions where as_of_date = %s order by customer_id
"""


def predict(as_of: dt.date) -> dict:
    return predict_customer_churn(RunParameters(as_of=as_of, warehouse_block=BLOCK))


def rows(warehouse: Warehouse, sql: str, *args) -> list[tuple]:
    with warehouse.connect() as conn:
        return conn.execute(sql, args).fetchall()


@pytest.fixture(scope="module")
def predicted(prefect_test_server, postgres_admin, tmp_path_factory):
    """A shop built and predicted four weeks before AS_OF, then built and predicted at
    AS_OF, as two weekly runs would."""
    warehouse = create_database(postgres_admin, "prediction")
    land_shop(warehouse, tmp_path_factory.mktemp("landing"), customers=1500, history_days=400)
    save_warehouse_block(warehouse, BLOCK)
    for as_of in (FOUR_WEEKS_BEFORE, AS_OF):
        run_dbt(warehouse, build_args(as_of, 90))
        predict(as_of)
    yield warehouse
    drop_database(postgres_admin, warehouse)


def test_predictions_are_kept_per_as_of_date_with_their_fit(predicted):
    fits = rows(
        predicted,
        "select as_of_date, status, bgnbd_converged, spend_converged, bgnbd_log_likelihood "
        "from prediction.model_fits order by fit_id",
    )
    assert [(row[0], row[1], row[2], row[3]) for row in fits] == [
        (FOUR_WEEKS_BEFORE, "converged", True, True),
        (AS_OF, "converged", True, True),
    ]
    assert all(row[4] < 0 for row in fits)
    for as_of in (FOUR_WEEKS_BEFORE, AS_OF):
        stored = rows(predicted, PREDICTIONS_SQL, as_of)
        customers = rows(
            predicted,
            "select count(*) from raw.customers where customer_id in ("
            "select customer_id from raw.orders where status = 'completed' and order_date < %s)",
            as_of,
        )
        assert len(stored) == customers[0][0] > 500


def test_the_same_data_and_as_of_date_give_the_same_predictions(predicted):
    before = rows(predicted, PREDICTIONS_SQL, AS_OF)
    predict(AS_OF)  # a rerun of the week
    after = rows(predicted, PREDICTIONS_SQL, AS_OF)
    # the rerun's rows carry its own fit id; every figure is identical
    assert [row[:2] + row[3:] for row in after] == [row[:2] + row[3:] for row in before]
    fits = rows(
        predicted,
        "select bgnbd_r, bgnbd_alpha, bgnbd_a, bgnbd_b, spend_p, spend_q, spend_v, "
        "bgnbd_log_likelihood from prediction.model_fits where as_of_date = %s order by fit_id",
        AS_OF,
    )
    assert len(fits) == 2 and fits[0] == fits[1]


def test_the_backtest_equals_a_direct_count_from_raw(predicted):
    lapsing = rows(
        predicted,
        "select customer_id from prediction.customer_predictions "
        "where as_of_date = %s and predicted_to_lapse",
        FOUR_WEEKS_BEFORE,
    )
    bought = rows(
        predicted,
        "select distinct customer_id from raw.orders "
        "where status = 'completed' and order_date >= %s and order_date < %s",
        FOUR_WEEKS_BEFORE,
        AS_OF,
    )
    expected_bought = len({row[0] for row in lapsing} & {row[0] for row in bought})
    figures = read_prediction_figures(predicted, AS_OF)
    assert figures.unavailable is None and figures.backtest is not None
    assert figures.backtest.stored
    assert figures.backtest.predicted_to_lapse == len(lapsing) > 0
    assert figures.backtest.bought_since == expected_bought
    line = next(line for line in prediction_lines(figures, "en_US") if "Backtest" in line)
    assert f"of the {len(lapsing)} customers predicted to lapse on Oct 26, 2026" in line
    assert f", {expected_bought} (" in line


def test_the_churn_breakdown_adds_up_to_the_week_change(predicted):
    movement = read_churn_movement(predicted, AS_OF)
    assert movement is not None
    churned = dict(
        rows(
            predicted,
            "select week_end, churned_in_week from marts.churn_weekly where week_end in (%s, %s)",
            AS_OF,
            AS_OF - dt.timedelta(days=7),
        )
    )
    assert movement.total_change == churned[AS_OF] - churned[AS_OF - dt.timedelta(days=7)]
    for segment_type in ("cohort", "value_tier", "last_category"):
        changes = movement.by_type(segment_type)
        assert changes, segment_type
        assert sum(change.change for change in changes) == movement.total_change
        assert sum(change.current for change in changes) == churned[AS_OF]


def test_a_shop_where_nobody_buys_twice_still_gets_its_report(
    prefect_test_server, warehouse, telegram_server, tmp_path
):
    """The model cannot be fitted: the prediction subflow ends Failed with the reason,
    the report goes out saying the prediction is unavailable, and the run ends
    Completed with a message naming the missing prediction."""
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterParentFlowRunId
    from prefect.utilities.asyncutils import run_coro_as_sync

    land_shop(warehouse, tmp_path, customers=600, products=50, history_days=150, seed=9)
    with warehouse.connect() as conn:
        conn.execute(
            """
            create temporary table later_orders as
            select orders.order_id
            from raw.orders as orders
            inner join (
                select customer_id, min(order_date) as first_day
                from raw.orders where status = 'completed' group by customer_id
            ) as firsts on orders.customer_id = firsts.customer_id
            where orders.order_date > firsts.first_day;
            delete from raw.order_items where order_id in (select order_id from later_orders);
            delete from raw.cancellations where order_id in (select order_id from later_orders);
            delete from raw.orders where order_id in (select order_id from later_orders);
            """
        )
    names = register_blocks(warehouse, telegram_server, "no-repeat")
    state = churn_pipeline(
        RunParameters(as_of=AS_OF, source="raw", dbt_node_tasks=False, **names),
        return_state=True,
    )
    assert state.is_completed()
    assert "prediction unavailable" in (state.message or "")
    assert "nobody has bought on a second day yet" in (state.message or "")

    text = "\n".join(m.plain_text for m in telegram_server.messages if m.method == "sendMessage")
    assert "Prediction unavailable: the purchase model (BG/NBD) did not converge" in text
    assert "Churned" in text  # the rule-based report is all there

    fits = rows(warehouse, "select status, problem from prediction.model_fits")
    assert len(fits) == 1 and fits[0][0] == "unusable"
    assert rows(warehouse, "select count(*) from prediction.customer_predictions") == [(0,)]

    async def child_states() -> dict[str, str]:
        async with get_client() as client:
            runs = await client.read_flow_runs(
                flow_run_filter=FlowRunFilter(
                    parent_flow_run_id=FlowRunFilterParentFlowRunId(
                        any_=[state.state_details.flow_run_id]
                    )
                )
            )
            flows = {flow.id: flow.name for flow in await client.read_flows()}
            return {flows[run.flow_id]: run.state.type.value for run in runs if run.state}

    children = run_coro_as_sync(child_states())
    assert children["predict-customer-churn"] == "FAILED"
    assert children["send-churn-report"] == "COMPLETED"


def test_an_error_in_the_model_is_recorded_and_fails_the_subflow(predicted, monkeypatch):
    import flows.prediction

    def broken(histories):
        raise RuntimeError("the optimiser blew up")

    monkeypatch.setattr(flows.prediction, "fit_customer_model", broken)
    as_of = AS_OF - dt.timedelta(days=7)
    state = predict_customer_churn(
        RunParameters(as_of=as_of, warehouse_block=BLOCK), return_state=True
    )
    assert state.is_failed()
    figures = read_prediction_figures(predicted, as_of)
    assert figures.unavailable == "the model failed: RuntimeError: the optimiser blew up"
    assert rows(predicted, PREDICTIONS_SQL, as_of) == []
