"""`python flows/main.py`: its options, its errors, and ad hoc runs on the embedded warehouse."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from churn.settings.command_line import parse_run_parameters
from churn.warehouse.embedded import stop_embedded

ROOT = Path(__file__).resolve().parent.parent


def test_help_lists_every_option(capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse_run_parameters(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for option in (
        "--as-of",
        "--customers",
        "--products",
        "--history-days",
        "--seed",
        "--locale",
        "--warehouse-block",
        "--telegram-block",
        "--source",
        "--replace-raw",
        "--dbt-node-tasks",
        "--full-refresh",
        "--churn-window-days",
        "--resend",
    ):
        assert option in text


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--customers", "-5"], "customers"),
        (["--customers", "0"], "customers"),
        (["--products", "-1"], "products"),
        (["--history-days", "3"], "history-days"),
        (["--as-of", "2026-13-45"], "as-of"),
        (["--as-of", "yesterday"], "as-of"),
        (["--locale", "fr_FR"], "locale"),
        (["--seed", "-1"], "seed"),
        (["--churn-window-days", "7"], "churn-window-days"),
        (["--warehouse-block", "Bad Name!"], "warehouse-block"),
    ],
)
def test_out_of_range_values_get_a_one_line_error(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse_run_parameters(argv)
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and error.startswith("python flows/main.py: error:")
    assert message in error


def run_cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "flows/main.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture
def adhoc_env(tmp_path, prefect_test_server):
    env = dict(os.environ)
    env.update(
        CHURN_DATA_DIR=str(tmp_path / "data"),
        CHURN_REPORTS_DIR=str(tmp_path / "reports"),
        PREFECT_API_URL=prefect_test_server,
    )
    yield env
    stop_embedded(tmp_path / "data" / "warehouse")


@pytest.mark.slow
def test_bad_input_stops_before_any_work(adhoc_env, tmp_path):
    result = run_cli(["--customers", "-3"], adhoc_env)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "customers" in result.stderr
    assert not (tmp_path / "data").exists(), "nothing was started or written"


@pytest.mark.slow
def test_two_ad_hoc_runs_reuse_the_embedded_warehouse_and_write_the_same_report(
    adhoc_env, tmp_path
):
    args = ["--as-of", "2026-11-23", "--seed", "7", "--customers", "700", "--history-days", "150"]
    first = run_cli(args, adhoc_env)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "Weekly churn report" in first.stdout
    assert "embedded PostgreSQL" in first.stderr + first.stdout
    assert "dry run" in first.stderr + first.stdout
    report = tmp_path / "reports" / "2026-11-23" / "report.txt"
    first_text = report.read_text()
    assert (tmp_path / "reports" / "2026-11-23" / "chart.png").read_bytes()[:4] == b"\x89PNG"

    second = run_cli(args, adhoc_env)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "rerun: replacing the week" in second.stderr + second.stdout
    assert report.read_text() == first_text
    assert (tmp_path / "data" / "warehouse" / "PG_VERSION").exists()
