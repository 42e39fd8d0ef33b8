"""A real `prefect server start` in a subprocess, for code whose subprocesses need an API.

In-process harnesses (`prefect_test_harness`) serve their own process only. Commands run
as subprocesses (`python -m blocks`, `prefect deploy`, a worker, a flow inside an image,
`python flows/main.py` as a deployment would run it) need a server they can reach over
HTTP, exactly as in production: this starts one on a free port of 127.0.0.1 with its own
PREFECT_HOME, waits (bounded) until /health answers, and always stops it, with
everything it spawned, when the block exits. The tests and the benchmarks use it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

SERVER_START_TIMEOUT_SECONDS = 120
STOP_TIMEOUT_SECONDS = 20
# Prefect's own settings that a developer's shell may carry and that would point a
# subprocess at another server, profile or home; tests set what they need explicitly.
INHERITED_PREFECT_SETTINGS = ("PREFECT_API_URL", "PREFECT_API_KEY", "PREFECT_PROFILE")


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on at the moment."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def is_healthy(api_url: str, timeout: float = 2.0) -> bool:
    """True when the Prefect API at `api_url` (ending in /api) answers its health check."""
    try:
        with urllib.request.urlopen(f"{api_url}/health", timeout=timeout) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def quiet_env(drop: Iterable[str] = (), **extra: str) -> dict[str, str]:
    """The environment for a subprocess: no telemetry, no stray Prefect target.

    Without internet, Prefect's and dbt's telemetry calls fail and log errors. `drop`
    removes more variables (e.g. the pipeline's settings, so a test controls them all).
    """
    removed = set(INHERITED_PREFECT_SETTINGS) | set(drop)
    env = {key: value for key, value in os.environ.items() if key not in removed}
    env.update(DO_NOT_TRACK="1", PREFECT_SERVER_ANALYTICS_ENABLED="false")
    env.update(extra)
    return env


def stop_process_group(process: subprocess.Popen[bytes], timeout: float) -> None:
    """SIGTERM the process's session (it was started with start_new_session), then SIGKILL."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


class PrefectServer:
    """`prefect server start` with PREFECT_HOME=`home`, on a free port of 127.0.0.1.

    `start()` returns at once, so a caller can overlap the server's 15-45 s of startup
    (database migrations in a fresh home) with other slow work, then `wait_until_healthy()`.
    Background services (scheduler, late-run marker, ...) are off by default: tests create
    the runs they want, and a scheduler would add runs for the deployments' real
    schedules; without them the server also records no task runs (the task run recorder
    is one). `ui` serves the Prefect UI too, at `ui_url`; `settings` are more Prefect
    settings for the server. The output goes to `home`/server.log, quoted when the
    server fails.
    """

    def __init__(
        self,
        home: Path,
        *,
        services: bool = False,
        ui: bool = False,
        settings: Mapping[str, str] | None = None,
    ) -> None:
        self.home = home
        self.services = services
        self.ui = ui
        self.settings = dict(settings or {})
        self.port = free_port()
        self.ui_url = f"http://127.0.0.1:{self.port}"
        self.api_url = f"{self.ui_url}/api"
        self.log_path = home / "server.log"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> PrefectServer:
        self.home.mkdir(parents=True, exist_ok=True)
        command = [
            sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
            "--port", str(self.port), "--analytics-off",
        ]  # fmt: skip
        if not self.services:
            command.append("--no-services")
        env = quiet_env(PREFECT_HOME=str(self.home))
        if self.ui:
            # The UI calls the API at this address; Prefect's upsell box stays out of
            # the screenshots.
            env.update(
                PREFECT_SERVER_UI_API_URL=self.api_url,
                PREFECT_SERVER_UI_SHOW_PROMOTIONAL_CONTENT="false",
            )
        else:
            command.append("--no-ui")
        env.update(self.settings)
        with self.log_path.open("wb") as log:
            # Its own session, so the server and any process it spawns stop together.
            self._process = subprocess.Popen(
                command,
                cwd=self.home,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def wait_until_healthy(self, timeout: float = SERVER_START_TIMEOUT_SECONDS) -> str:
        """Block until /health answers (bounded); returns the API URL."""
        assert self._process is not None, "start() first"
        deadline = time.monotonic() + timeout
        while not is_healthy(self.api_url):
            if self._process.poll() is not None or time.monotonic() > deadline:
                tail = self.log_path.read_text(errors="replace")[-3000:]
                raise RuntimeError(
                    f"the Prefect server did not start within {timeout:.0f} s:\n{tail}"
                )
            time.sleep(0.5)
        return self.api_url

    def stop(self) -> None:
        if self._process is not None:
            stop_process_group(self._process, STOP_TIMEOUT_SECONDS)


@contextlib.contextmanager
def running_prefect_server(
    home: Path, *, services: bool = False, timeout: float = SERVER_START_TIMEOUT_SECONDS
) -> Iterator[str]:
    """Start a Prefect server, wait until it is healthy, yield its API URL, always stop it."""
    server = PrefectServer(home, services=services).start()
    try:
        yield server.wait_until_healthy(timeout)
    finally:
        server.stop()
