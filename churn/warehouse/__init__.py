"""Which PostgreSQL a run uses, connections to it, the raw layer, the embedded server.

`python -m churn.warehouse url|psql|stop` opens or stops the embedded warehouse.
"""

from churn.warehouse.connection import (
    InvalidWarehouseUrl,
    Warehouse,
    WarehouseUnavailable,
    parse_warehouse_url,
)

__all__ = ["InvalidWarehouseUrl", "Warehouse", "WarehouseUnavailable", "parse_warehouse_url"]
