"""Which rows an incremental build tests: the checks window's first day."""

from __future__ import annotations

import datetime as dt

from churn.build.commands import LastBuild, build_steps, checks_window_start

AS_OF = dt.date(2026, 11, 23)
WEEK = dt.timedelta(days=7)


def test_a_first_build_or_an_unknown_last_one_checks_every_row() -> None:
    assert checks_window_start(None, AS_OF) is None
    assert checks_window_start(LastBuild(churn_window_days=90, as_of=None), AS_OF) is None


def test_the_next_week_checks_what_is_new_since_the_last_build() -> None:
    last = LastBuild(churn_window_days=90, as_of=AS_OF - WEEK)
    assert checks_window_start(last, AS_OF) == AS_OF - WEEK
    # after a skipped week, both new weeks
    last = LastBuild(churn_window_days=90, as_of=AS_OF - 2 * WEEK)
    assert checks_window_start(last, AS_OF) == AS_OF - 2 * WEEK


def test_a_rerun_or_a_backfill_checks_its_reported_week_again() -> None:
    last = LastBuild(churn_window_days=90, as_of=AS_OF)
    assert checks_window_start(last, AS_OF) == AS_OF - WEEK
    assert checks_window_start(last, AS_OF - 3 * WEEK) == AS_OF - 4 * WEEK


def test_the_window_reaches_both_dbt_commands_and_the_build_skips_the_raw_checks() -> None:
    raw_step, build_step = build_steps(AS_OF, 90, checks_from=AS_OF - WEEK)
    (raw_name, raw_args), (build_name, build) = (
        (raw_step.name, raw_step.args),
        (
            build_step.name,
            build_step.args,
        ),
    )
    assert (raw_name, build_name) == ("dbt-raw-checks", "dbt-build")
    assert raw_args[:3] == ["test", "--select", "source:shop"]
    assert '"checks_from": "2026-11-16"' in raw_args[raw_args.index("--vars") + 1]
    assert '"checks_from": "2026-11-16"' in build[build.index("--vars") + 1]
    assert build[build.index("--exclude") + 1] == "source:shop"
    # without a window (a full build), no var: every test reads every row
    raw_args, build = (step.args for step in build_steps(AS_OF, 90, full_refresh=True))
    assert "checks_from" not in raw_args[raw_args.index("--vars") + 1]
    assert "--full-refresh" in build
