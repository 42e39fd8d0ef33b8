"""The local Prefect server of ad hoc runs: started once in the background, then reused.

Without a Prefect server, every `python flows/main.py` starts a temporary one and stops
it at the end: seconds lost on every run, and nothing left to look at. Like the embedded
warehouse, this server outlives the run: the first ad hoc run starts it (with its UI),
later runs reuse it, and each run can be watched in the Prefect UI like a deployed one.
It keeps its database in PREFECT_HOME, as the temporary servers do, so blocks saved
before are still there. A server named by PREFECT_API_URL is used as it is.

    python -m churn.settings.local_server url     # its address (starting it if needed)
    python -m churn.settings.local_server stop    # stop it (the next run starts it again)

If the server cannot start, the run says why and uses a temporary server, as before.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from churn.settings.command_line import run_subcommand, stopped
from churn.settings.paths import data_dir
from churn.settings.prefect_server import free_port, is_healthy

DEFAULT_PORT = 4200
PORT_ENV = "CHURN_PREFECT_SERVER_PORT"
# "off": every ad hoc run starts a temporary server of its own, as Prefect does by itself.
MODE_ENV = "CHURN_LOCAL_PREFECT_SERVER"
START_TIMEOUT_SECONDS = 90
STOP_TIMEOUT_SECONDS = 20


class LocalServerError(RuntimeError):
    """The local server could not start; the message says why in one line."""


@dataclass(frozen=True)
class LocalServer:
    """A running local Prefect server: its process and address."""

    pid: int
    api_url: str
    log_path: str

    @property
    def ui_url(self) -> str:
        return self.api_url.removesuffix("/api")


def state_dir() -> Path:
    return data_dir() / "prefect-server"


def _state_file() -> Path:
    return state_dir() / "server.json"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def running_local_server() -> LocalServer | None:
    """The local server if it is running and answers; None otherwise."""
    try:
        state = json.loads(_state_file().read_text())
        server = LocalServer(int(state["pid"]), str(state["api_url"]), str(state["log_path"]))
    except (OSError, ValueError, KeyError):
        return None
    if _alive(server.pid) and is_healthy(server.api_url):
        return server
    return None


def _port() -> int:
    wanted = os.environ.get(PORT_ENV, "").strip()
    if wanted:
        return int(wanted)
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", DEFAULT_PORT))
        except OSError:  # taken: another program, or another project's server
            return free_port()
    return DEFAULT_PORT


def _log_tail(path: Path) -> str:
    try:
        lines = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "no log"
    errors = [line for line in lines if "error" in line.lower()]
    return (errors or lines or ["no output"])[-1][:200]


def start_local_server(timeout: float = START_TIMEOUT_SECONDS) -> LocalServer:
    """Start the server in the background (its own session: it outlives this process)."""
    port = _port()
    api_url = f"http://127.0.0.1:{port}/api"
    folder = state_dir()
    folder.mkdir(parents=True, exist_ok=True)
    log_path = folder / "server.log"
    environment = {
        **os.environ,
        "DO_NOT_TRACK": "1",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        # the UI asks this address for its data, not the default port
        "PREFECT_UI_API_URL": api_url,
    }
    environment.pop("PREFECT_API_URL", None)
    command = [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
               "--port", str(port), "--analytics-off"]  # fmt: skip
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command,
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + timeout
    while not is_healthy(api_url):
        if process.poll() is not None:
            raise LocalServerError(
                f"the local Prefect server stopped at once ({_log_tail(log_path)}; see {log_path})"
            )
        if time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            raise LocalServerError(
                f"the local Prefect server did not answer within {timeout:.0f} s (see {log_path})"
            )
        time.sleep(0.5)
    server = LocalServer(process.pid, api_url, str(log_path))
    _state_file().write_text(json.dumps(server.__dict__))
    return server


def stop_local_server() -> bool:
    """Stop the local server if it runs; True if it was running."""
    server = running_local_server()
    _state_file().unlink(missing_ok=True)
    if server is None:
        return False
    with contextlib.suppress(ProcessLookupError):
        os.killpg(server.pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
    while _alive(server.pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    if _alive(server.pid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGKILL)
    return True


@dataclass(frozen=True)
class ServerChoice:
    """The Prefect API an ad hoc run uses, and one line saying which and why."""

    api_url: str | None  # None: a temporary server, as Prefect starts by itself
    note: str


def choose_server(start: bool = True) -> ServerChoice:
    """The server named by PREFECT_API_URL, or the local one (started if needed and
    `start`), or, when it cannot start, a temporary one, saying why."""
    named = os.environ.get("PREFECT_API_URL", "").strip()
    if named:
        return ServerChoice(named, f"Prefect: the server of PREFECT_API_URL ({named})")
    if os.environ.get(MODE_ENV, "").strip().lower() == "off":
        return ServerChoice(None, f"Prefect: a temporary server ({MODE_ENV}=off)")
    server = running_local_server()
    if server is not None:
        return ServerChoice(server.api_url, f"Prefect: the local server at {server.ui_url}")
    if not start:
        return ServerChoice(None, "Prefect: a temporary server (no local server runs)")
    try:
        server = start_local_server()
    except (LocalServerError, OSError, ValueError) as error:
        return ServerChoice(None, f"Prefect: a temporary server for this run, because {error}")
    return ServerChoice(
        server.api_url,
        f"Prefect: started the local server at {server.ui_url} (it keeps running; "
        "`python -m churn.settings.local_server stop` stops it)",
    )


def prefect_api(api_url: str | None) -> contextlib.AbstractContextManager[object]:
    """Prefect pointed at `api_url` for a block of code (unchanged when None)."""
    if api_url is None:
        return contextlib.nullcontext()
    from prefect.settings import PREFECT_API_URL, temporary_settings

    return temporary_settings({PREFECT_API_URL: api_url})


def _address() -> int:
    server = running_local_server()
    if server is None:
        try:
            server = start_local_server()
        except LocalServerError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
    print(server.ui_url)
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_subcommand(
        "python -m churn.settings.local_server",
        "The local Prefect server of ad hoc runs: its address (started if needed), or stop it.",
        {"url": _address, "stop": lambda: stopped(stop_local_server())},
        argv,
    )


if __name__ == "__main__":
    raise SystemExit(main())
