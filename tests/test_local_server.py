"""The local Prefect server of ad hoc runs: started once, reused, stopped; a server that
cannot start leaves the run on a temporary one, saying why."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from churn.settings.environment import temporary_environment
from churn.settings.local_server import (
    MODE_ENV,
    PORT_ENV,
    choose_server,
    running_local_server,
    stop_local_server,
)
from churn.settings.prefect_server import free_port, is_healthy

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def local_env(tmp_path: Path) -> Iterator[Path]:
    """A data folder and PREFECT_HOME of its own, no PREFECT_API_URL; stops what it started."""
    values = {
        "CHURN_DATA_DIR": str(tmp_path / "data"),
        "CHURN_REPORTS_DIR": str(tmp_path / "reports"),
        "PREFECT_HOME": str(tmp_path / "prefect-home"),
        PORT_ENV: str(free_port()),
    }
    saved = os.environ.pop("PREFECT_API_URL", None)
    try:
        with temporary_environment(values):
            yield tmp_path
            stop_local_server()
    finally:
        if saved is not None:
            os.environ["PREFECT_API_URL"] = saved


def test_the_first_choice_starts_the_server_the_next_reuses_it_and_stop_stops_it(
    local_env: Path,
) -> None:
    first = choose_server()
    assert first.api_url is not None and "started the local server" in first.note
    server = running_local_server()
    assert server is not None and is_healthy(server.api_url)

    again = choose_server()

    assert again.api_url == first.api_url and "the local server at" in again.note
    assert running_local_server() == server
    assert stop_local_server()
    assert running_local_server() is None and not is_healthy(server.api_url)
    assert not stop_local_server()


def test_a_server_that_cannot_start_leaves_a_temporary_one_and_says_why(
    local_env: Path,
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", int(os.environ[PORT_ENV])))
        taken.listen()

        choice = choose_server()

    assert choice.api_url is None
    assert choice.note.startswith("Prefect: a temporary server for this run, because ")
    assert "see " in choice.note and "server.log" in choice.note
    assert running_local_server() is None


def test_named_servers_and_the_off_switch_start_nothing(local_env: Path) -> None:
    with temporary_environment({"PREFECT_API_URL": "http://127.0.0.1:9/api"}):
        assert choose_server().api_url == "http://127.0.0.1:9/api"
    with temporary_environment({MODE_ENV: "off"}):
        assert choose_server().api_url is None
    assert choose_server(start=False).api_url is None
    assert running_local_server() is None


def test_a_second_ad_hoc_run_reuses_the_server_and_prints_where_to_watch_it(
    local_env: Path,
) -> None:
    args = [sys.executable, "flows/main.py", "--as-of", "2026-11-23", "--customers", "300",
            "--products", "20", "--history-days", "60"]  # fmt: skip
    runs = [
        subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=600)
        for _ in range(2)
    ]

    server = running_local_server()
    assert server is not None
    first, second = (run.stdout + run.stderr for run in runs)
    assert all(run.returncode == 0 for run in runs), second[-3000:]
    assert "started the local server" in first
    assert f"Prefect: the local server at {server.ui_url}" in second
    assert f"Watch this run in the Prefect UI: {server.ui_url}/runs/flow-run/" in second
    assert "Starting temporary server" not in first + second
