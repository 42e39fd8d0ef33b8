"""Bad parameters: every out-of-range input gets a one-line error before any work.

`python flows/main.py` is checked in process (parse_args) for each bad value, and once as
a subprocess; `python -m blocks` as a subprocess for each bad input. The subprocesses get
a Prefect API URL where nothing listens: a command that started working despite bad
input would fail differently (exit 1, a connection error), not with exit 2.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from churn.settings.command_line import parse_run_parameters
from tests.reliability import Kind, ReliabilityCase

ROOT = Path(__file__).resolve().parent.parent
NOWHERE_API = "http://127.0.0.1:9/api"
TOKEN = "987654321:SeCrEt-Token_reliability"

# Each bad value with the option the error line must name.
BAD_PIPELINE_ARGUMENTS = {
    "customers-zero": (["--customers", "0"], "customers"),
    "customers-negative": (["--customers", "-5"], "customers"),
    "customers-too-many": (["--customers", "50000001"], "customers"),
    "customers-not-a-number": (["--customers", "ten"], "--customers"),
    "customers-missing-value": (["--customers"], "--customers"),
    "products-zero": (["--products", "0"], "products"),
    "products-too-many": (["--products", "1000001"], "products"),
    "history-days-too-short": (["--history-days", "13"], "history-days"),
    "history-days-too-long": (["--history-days", "3651"], "history-days"),
    "seed-negative": (["--seed", "-1"], "seed"),
    "seed-too-large": (["--seed", str(2**31)], "seed"),
    "churn-window-too-short": (["--churn-window-days", "30"], "churn-window-days"),
    "churn-window-too-long": (["--churn-window-days", "731"], "churn-window-days"),
    "as-of-not-a-date": (["--as-of", "2026-13-45"], "as-of"),
    "as-of-a-word": (["--as-of", "yesterday"], "as-of"),
    "locale-unsupported": (["--locale", "fr_FR"], "locale"),
    "warehouse-block-bad-name": (["--warehouse-block", "Bad Name!"], "warehouse-block"),
    "warehouse-block-empty": (["--warehouse-block", ""], "warehouse-block"),
    "telegram-block-upper-case": (["--telegram-block", "Telegram"], "telegram-block"),
    "unknown-option": (["--bogus"], "--bogus"),
}


@pytest.mark.parametrize(
    ("argv", "named"), BAD_PIPELINE_ARGUMENTS.values(), ids=BAD_PIPELINE_ARGUMENTS.keys()
)
def test_a_bad_pipeline_argument_is_rejected_in_one_line(
    argv: list[str],
    named: str,
    capsys: pytest.CaptureFixture[str],
    reliability: Callable[[Kind], ReliabilityCase],
) -> None:
    case = reliability("bad input")

    with pytest.raises(SystemExit) as exit_info:
        parse_run_parameters(argv)

    assert exit_info.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and captured.err.startswith(
        "python flows/main.py: error: "
    ), captured.err
    assert named in captured.err
    case.rejected()


def _environment(**extra: str) -> dict[str, str]:
    """This process's environment without pipeline settings, and with `extra`."""
    settings = ("WAREHOUSE_URL", "TELEGRAM_BOT_TOKEN", "TELEGRAM_CHAT_ID", "TELEGRAM_API_URL")
    env = {key: value for key, value in os.environ.items() if key not in settings}
    env.update(PREFECT_API_URL=NOWHERE_API, DO_NOT_TRACK="1", **extra)
    return env


@pytest.mark.slow
def test_a_bad_pipeline_argument_stops_the_command_before_any_work(
    tmp_path: Path, reliability: Callable[[Kind], ReliabilityCase]
) -> None:
    case = reliability("bad input")
    data = tmp_path / "data"

    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "flows/main.py", "--history-days", "3", "--as-of", "2026-11-23"],
        cwd=ROOT,
        env=_environment(CHURN_DATA_DIR=str(data), CHURN_REPORTS_DIR=str(tmp_path / "reports")),
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.count("\n") == 1 and "history-days" in result.stderr, result.stderr
    assert result.stdout == ""
    assert not data.exists(), "the command started working"
    assert time.monotonic() - started < 60
    case.rejected()


# Each case: arguments, environment, and a word the error line must contain.
BAD_BLOCKS_INPUTS: dict[str, tuple[list[str], dict[str, str], str]] = {
    "block-name-with-capitals": (["--warehouse-block", "Warehouse_1"], {}, "--warehouse-block"),
    "unknown-option": (["--bogus"], {}, "--bogus"),
    "missing-env-file": (["--env-file", "missing.env"], {}, "missing.env"),
    "nothing-configured": ([], {}, "nothing to save"),
    "warehouse-url-not-a-url": ([], {"WAREHOUSE_URL": "db.internal:5432/shop"}, "WAREHOUSE_URL"),
    "warehouse-url-not-postgres": (
        [],
        {"WAREHOUSE_URL": "mysql://churn:secret@db.internal/shop"},
        "WAREHOUSE_URL",
    ),
    "token-malformed": (
        [],
        {"TELEGRAM_BOT_TOKEN": "not-a-token", "TELEGRAM_CHAT_ID": "-100123"},
        "TELEGRAM_BOT_TOKEN",
    ),
    "chat-id-malformed": (
        [],
        {"TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_CHAT_ID": "my chat"},
        "TELEGRAM_CHAT_ID",
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "env", "named"), BAD_BLOCKS_INPUTS.values(), ids=BAD_BLOCKS_INPUTS.keys()
)
def test_a_bad_blocks_input_is_rejected_in_one_line_before_anything_is_saved(
    args: list[str],
    env: dict[str, str],
    named: str,
    tmp_path: Path,
    reliability: Callable[[Kind], ReliabilityCase],
) -> None:
    case = reliability("bad input")
    pythonpath = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))

    result = subprocess.run(
        [sys.executable, "-m", "blocks", *args],
        cwd=tmp_path,  # an empty folder: no .env to read
        env=_environment(PYTHONPATH=pythonpath, **env),
        capture_output=True,
        text=True,
        timeout=120,
    )

    # Exit 2 is bad input; a save attempted against NOWHERE_API would have exited 1.
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("python -m blocks: error: "), result.stderr
    assert named in lines[0]
    assert "secret" not in result.stderr and TOKEN not in result.stderr
    case.rejected()
