"""Which warehouse a run uses: its SqlAlchemyConnector block, or the embedded one.

An ad hoc run without the block falls back to the embedded PostgreSQL; a deployment
run never falls back: a missing block there is an error.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from churn.settings.blocks import in_deployment_run, load_block
from churn.warehouse.connection import DEFAULT_PORT, Warehouse, parse_warehouse_url
from churn.warehouse.embedded import embedded_warehouse

if TYPE_CHECKING:
    from prefect_sqlalchemy import SqlAlchemyConnector

WAREHOUSE_DRIVER = "postgresql+psycopg"


class MissingWarehouseBlock(RuntimeError):
    """A deployment run was asked for a block that does not exist."""


def warehouse_from_connector(connector: SqlAlchemyConnector, block_name: str) -> Warehouse:
    """The Warehouse a SqlAlchemyConnector block describes (components or a URL)."""
    origin = f"block '{block_name}'"
    info = connector.connection_info
    if isinstance(info, str):  # a block made by hand in the UI may hold a plain URL
        return parse_warehouse_url(info, origin=origin)
    options = {key: str(value) for key, value in (info.query or {}).items()}
    host = info.host or options.pop("host", None) or "localhost"
    options.pop("host", None)
    return Warehouse(
        host=host,
        port=int(info.port or options.pop("port", None) or DEFAULT_PORT),
        user=info.username or "postgres",
        database=info.database or "postgres",
        password=info.password.get_secret_value() if info.password else None,
        options={key: value for key, value in options.items() if key != "port"},
        origin=origin,
    )


def connector_for(warehouse: Warehouse) -> SqlAlchemyConnector:
    """The SqlAlchemyConnector block that describes `warehouse` (the password a secret)."""
    from prefect_sqlalchemy import ConnectionComponents, SqlAlchemyConnector
    from pydantic import SecretStr

    return SqlAlchemyConnector(
        connection_info=ConnectionComponents(
            driver=WAREHOUSE_DRIVER,
            host=warehouse.host,
            port=warehouse.port,
            username=warehouse.user,
            password=SecretStr(warehouse.password) if warehouse.password else None,
            database=warehouse.database,
            query=dict(warehouse.options) or None,
        )
    )


def warehouse_from_block(block_name: str) -> Warehouse | None:
    """The warehouse of the named SqlAlchemyConnector block, or None if there is none."""
    from prefect_sqlalchemy import SqlAlchemyConnector

    connector = load_block(SqlAlchemyConnector, block_name)
    return None if connector is None else warehouse_from_connector(connector, block_name)


def resolve_warehouse(block_name: str) -> Warehouse:
    """The block's warehouse; the embedded one for ad hoc runs without that block."""
    warehouse = warehouse_from_block(block_name)
    if warehouse is not None:
        return warehouse
    if in_deployment_run():
        raise MissingWarehouseBlock(
            f"no SqlAlchemyConnector block named '{block_name}': create it with "
            "`python -m blocks` before running the deployment"
        )
    return embedded_warehouse()
