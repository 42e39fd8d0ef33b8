"""The dbt commands of a build, as argument lists: pure, tested without dbt or a database.

Raw is checked in an invocation of its own, before the build. Inside one `dbt build` a
test with two parents (a relationships test, an order before its customer's signup)
holds back only the models downstream of BOTH parents, so a mart fed by one of them was
rebuilt from the bad rows before the test failed. Checked first, a raw defect leaves
every mart as it was. The build then leaves these checks out; a `dbt build` by hand
runs them with everything else.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

# The checks that read only `raw`: the sources' tests.
RAW_CHECKS_SELECTOR = "source:shop"


@dataclass(frozen=True)
class LastBuild:
    """What the last successful build of a warehouse was made with."""

    churn_window_days: int
    as_of: dt.date | None  # unknown for a build recorded before it was kept
    changes_through: int = 0  # the last raw change it took into account


@dataclass(frozen=True)
class RawChange:
    """A change to raw since the last build: an import's (with the first day it touched) or
    one made outside the pipeline's landings (any day)."""

    change_id: int
    origin: str  # "import" or "outside"
    table: str
    first_day: dt.date | None  # None: unknown, any day may have changed
    rows: int | None
    note: str | None

    def describe(self) -> str:
        if self.origin == "outside":
            return f"raw.{self.table} was written outside a landing ({self.note})"
        rows = f"{self.rows:,} rows" if self.rows is not None else "rows"
        since = f" from {self.first_day}" if self.first_day else " on any day"
        return f"{self.note or 'an import'} changed {rows} of raw.{self.table}{since}"


@dataclass(frozen=True)
class BuildPlan:
    """How a build runs: all from scratch or incrementally, and from which day the tests
    of the large tables read rows (None: every row)."""

    full_refresh: bool
    checks_from: dt.date | None
    reasons: list[str]


def plan_build(
    last: LastBuild | None,
    as_of: dt.date,
    churn_window_days: int,
    changes: list[RawChange],
    *,
    full_refresh: bool = False,
) -> BuildPlan:
    """Decide how much a build computes again, from the last build and what changed since.

    A build computes from scratch when asked, when there was none, when the churn window
    changed, and when rows that the last build read have changed since (an outside write
    to raw, of unknown extent, or an import that touched a day before the last build's
    as-of date). Otherwise it computes the new days only, and tests the new rows only.
    """
    reasons: list[str] = []
    if full_refresh:
        reasons.append("a full refresh was asked for")
    if last is None:
        reasons.append("the models were never built in this warehouse")
    elif last.churn_window_days != churn_window_days:
        reasons.append(
            f"the churn window changed ({last.churn_window_days} -> {churn_window_days} days)"
        )
    else:
        read_until = last.as_of
        for change in changes:
            if change.first_day is None or read_until is None or change.first_day < read_until:
                reasons.append(f"{change.describe()}, which the last build had read")
    if reasons:
        return BuildPlan(True, None, reasons)
    return BuildPlan(False, checks_window_start(last, as_of), [])


@dataclass(frozen=True)
class DbtStep:
    """One dbt invocation of the build: the task name it runs as, and its arguments."""

    name: str
    args: list[str]


def dbt_vars(as_of: dt.date, churn_window_days: int, checks_from: dt.date | None = None) -> str:
    """The --vars argument: every model is a function of these and the data.

    `checks_from` opens the checks window (see dbt/macros/checks_window.sql): the tests
    of the large tables then read only rows dated from that day. Without it, every test
    reads every row.
    """
    values: dict[str, object] = {
        "as_of_date": as_of.isoformat(),
        "churn_window_days": churn_window_days,
    }
    if checks_from is not None:
        values["checks_from"] = checks_from.isoformat()
    return json.dumps(values)


def build_args(
    as_of: dt.date,
    churn_window_days: int,
    *,
    full_refresh: bool = False,
    checks_from: dt.date | None = None,
    raw_checked: bool = False,
) -> list[str]:
    """`dbt build` arguments; `raw_checked` leaves out the raw checks that already passed."""
    args = ["build", "--vars", dbt_vars(as_of, churn_window_days, checks_from)]
    if raw_checked:
        args += ["--exclude", RAW_CHECKS_SELECTOR]
    if full_refresh:
        args.append("--full-refresh")
    return args


def raw_check_args(
    as_of: dt.date, churn_window_days: int, checks_from: dt.date | None = None
) -> list[str]:
    """`dbt test` of the raw layer alone, run before the build (same vars: partial parsing)."""
    return [
        "test",
        "--select",
        RAW_CHECKS_SELECTOR,
        "--vars",
        dbt_vars(as_of, churn_window_days, checks_from),
    ]


def build_steps(
    as_of: dt.date,
    churn_window_days: int,
    *,
    full_refresh: bool = False,
    checks_from: dt.date | None = None,
) -> list[DbtStep]:
    """The build's dbt commands, in order: the raw checks, then the build."""
    return [
        DbtStep("dbt-raw-checks", raw_check_args(as_of, churn_window_days, checks_from)),
        DbtStep(
            "dbt-build",
            build_args(
                as_of,
                churn_window_days,
                full_refresh=full_refresh,
                checks_from=checks_from,
                raw_checked=True,
            ),
        ),
    ]


def checks_window_start(last: LastBuild | None, as_of: dt.date) -> dt.date | None:
    """The first day whose rows an incremental build must check, or None for all rows.

    The last build checked every row dated before its as-of date. Going forward, what is
    new starts there; a rerun or a backfill lands its reported week again, which starts a
    week before its as-of date.
    """
    if last is None or last.as_of is None:
        return None
    if as_of > last.as_of:
        return last.as_of
    return as_of - dt.timedelta(days=7)
