"""How the flows end when a step refuses its input or fails: one message, one traceback.

A refused input (churn.errors.InputRefused) is not a bug: the step's task returns a
failed state saying why, the step's flow ends failed with that line, and the parent
flow ends failed with it too, without a traceback anywhere in the log.
"""

from __future__ import annotations

from typing import Any

from prefect import get_run_logger
from prefect.states import Failed, State


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
