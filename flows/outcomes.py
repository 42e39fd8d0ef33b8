"""How the flows end when a step refuses its input or fails: one message, one traceback.

A refused input (churn.errors.InputRefused) is not a bug: the step's task returns a
failed state saying why, the step's flow ends failed with that line, and the parent
flow ends failed with it too, without a traceback anywhere in the log.
"""

from __future__ import annotations

from typing import Any

from prefect import get_run_logger
from prefect.states import Failed, State
from prefect.utilities.urls import url_for


def result_or_failure(step: State) -> tuple[Any, State | None]:
    """A finished task's result, or the failed state that ends the flow.

    A refusal (a failed state without an error) is logged here, once; an error was
    logged with its traceback where it was raised.
    """
    if step.is_completed():
        return step.result(), None
    failed = failed_like(step)
    if failed.data is None:
        get_run_logger().error("%s", step.message)
    return None, failed


def failed_like(step: State) -> State:
    """A failed state carrying a failed step's message and its error, if it raised one
    (so the failure alert can name the step), without a second traceback."""
    try:
        error = step.result(raise_on_failure=False)
    except Exception as unreadable:  # a step that failed without a result to read
        error = unreadable
    return Failed(message=step.message, data=error if isinstance(error, BaseException) else None)


def run_page(flow_run_id: object) -> str | None:
    """A flow run's page in the Prefect UI, when Prefect knows the UI's address
    (PREFECT_UI_URL, or a server's own address); None for a temporary server."""
    if not flow_run_id:
        return None
    return url_for("flow-run", obj_id=str(flow_run_id))


def this_pipeline_run_page() -> str | None:
    """The page of the pipeline run this flow belongs to (the parent run, not a step)."""
    from prefect.runtime import flow_run

    try:
        return run_page(flow_run.root_flow_run_id)
    except Exception:  # no API to ask (an ephemeral run winding down): no link
        return None
