"""The embedded PostgreSQL of ad hoc runs (pgserver), kept under the data folder.

It starts in under a second (initdb on first use), listens on a Unix socket in its
folder with trust authentication, and is left running when the process ends, so the
next run and a SQL client can reuse it; `python -m churn.warehouse stop` stops it.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from churn.settings.paths import data_dir
from churn.warehouse.connection import Warehouse, parse_warehouse_url

EMBEDDED_DATABASE = "warehouse"


def embedded_dir() -> Path:
    return data_dir() / "warehouse"


def embedded_warehouse(directory: Path | None = None) -> Warehouse:
    """Start (or reuse) the embedded PostgreSQL and make sure its database exists."""
    import pgserver

    directory = directory or embedded_dir()
    directory.parent.mkdir(parents=True, exist_ok=True)
    # pgserver's own logger is chatty at INFO; its messages are not ours to show.
    logging.getLogger("pgserver").setLevel(logging.WARNING)
    server = pgserver.get_server(directory, cleanup_mode=None)
    admin = parse_warehouse_url(
        server.get_uri(database="postgres"), origin=f"embedded PostgreSQL in {directory}"
    )
    with admin.connect(autocommit=True) as conn:
        exists = conn.execute(
            "select 1 from pg_database where datname = %s", (EMBEDDED_DATABASE,)
        ).fetchone()
        if not exists:
            conn.execute(f'create database "{EMBEDDED_DATABASE}"')
    return admin.with_database(EMBEDDED_DATABASE)


def stop_embedded(directory: Path | None = None) -> bool:
    """Stop the embedded PostgreSQL if it runs; True if it was running."""
    from pgserver._commands import pg_ctl  # type: ignore[attr-defined]
    from pgserver.utils import PostmasterInfo

    directory = (directory or embedded_dir()).resolve()
    info = PostmasterInfo.read_from_pgdata(directory) if directory.exists() else None
    if info is None or not info.is_running():
        return False
    user = "pgserver" if os.geteuid() == 0 else None
    pg_ctl(["-w", "stop", "-m", "fast"], pgdata=directory, user=user)
    return True


def psql_command(warehouse: Warehouse) -> list[str]:
    """The psql of the embedded server's binaries, opened on `warehouse`."""
    from pgserver._commands import POSTGRES_BIN_PATH

    return [
        str(POSTGRES_BIN_PATH / "psql"),
        "-h",
        warehouse.host,
        "-p",
        str(warehouse.port),
        "-U",
        warehouse.user,
        warehouse.database,
    ]
