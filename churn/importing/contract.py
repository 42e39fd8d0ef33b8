"""What an import accepts: the raw tables' columns, and the one-file form of orders.

Two forms, CSV or Parquet:

- the full contract, a folder holding the raw tables as files named after them
  (`orders.csv`, `order_items.parquet`, ...): orders and order lines are required;
  customers, products and cancellations may be left out (they are then derived from the
  orders: a customer's signup is their first order, a product's price the highest paid);
- the one-file form, one row per order or per order line, from which the five tables
  are derived.

Column names are matched case-insensitively; columns not listed are ignored. Only ids,
dates, statuses, quantities and amounts are required: names, e-mails, costs and
categories may be empty everywhere (churn needs none of them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from churn.errors import InputRefused

# What a value must look like: an integer id, a positive whole count, an amount of money
# (a decimal number, not negative), an ISO date, an ISO timestamp in the shop's time
# zone, free text, or an order status.
Kind = Literal["id", "count", "amount", "date", "timestamp", "text", "status"]

STATUSES = ("completed", "cancelled")
# Spellings of a status taken as what they mean.
STATUS_SPELLINGS = {"completed": "completed", "cancelled": "cancelled", "canceled": "cancelled"}
DATA_SUFFIXES = (".csv", ".parquet")


@dataclass(frozen=True)
class Column:
    """One column of an input file."""

    name: str
    kind: Kind
    required: bool = True  # the file must have this column
    nullable: bool = False  # a row may leave it empty

    @property
    def rule(self) -> str:
        """The column's rule in a few words, for errors and the README's table."""
        words = {
            "id": "a whole number",
            "count": "a whole number above 0",
            "amount": "a number, 0 or more (e.g. 12.50)",
            "date": "a date, YYYY-MM-DD",
            "timestamp": "a date and time, YYYY-MM-DD HH:MM[:SS], shop time",
            "text": "text",
            "status": " or ".join(STATUSES),
        }
        return words[self.kind]


def _optional(name: str, kind: Kind) -> Column:
    return Column(name, kind, required=False, nullable=True)


# The raw tables, in their column order (the order COPY writes them in).
TABLE_COLUMNS: dict[str, tuple[Column, ...]] = {
    "customers": (
        Column("customer_id", "id"),
        _optional("name", "text"),
        _optional("email", "text"),
        Column("signup_date", "date"),
        _optional("signed_up_at", "timestamp"),
    ),
    "products": (
        Column("product_id", "id"),
        _optional("name", "text"),
        _optional("category", "text"),
        _optional("cost", "amount"),
        Column("price", "amount"),
    ),
    "orders": (
        Column("order_id", "id"),
        Column("customer_id", "id"),
        Column("order_date", "date"),
        _optional("ordered_at", "timestamp"),
        Column("status", "status"),
    ),
    "order_items": (
        Column("order_id", "id"),
        # numbered 1, 2, ... in the file's order within each order when left out
        Column("line_number", "count", required=False),
        Column("product_id", "id"),
        Column("quantity", "count"),
        Column("unit_price", "amount"),
        # the line's total when it is not quantity x unit price to the cent
        _optional("line_amount", "amount"),
    ),
    "cancellations": (
        Column("order_id", "id"),
        _optional("cancel_reason", "text"),
        _optional("cancelled_at", "timestamp"),
    ),
}
REQUIRED_TABLES = ("orders", "order_items")

# The one-file form. Either order_date or ordered_at, and either amount or unit_price,
# must be there; a file without order_id has one order per row.
ONE_FILE_COLUMNS: tuple[Column, ...] = (
    Column("customer_id", "id"),
    Column("order_id", "id", required=False),
    Column("order_date", "date", required=False),
    Column("ordered_at", "timestamp", required=False),
    Column("amount", "amount", required=False),
    Column("unit_price", "amount", required=False),
    Column("quantity", "count", required=False),
    Column("status", "status", required=False),
    # a product id, or its name
    _optional("product", "text"),
)
ONE_OF = (("order_date", "ordered_at"), ("amount", "unit_price"))


class ImportRefused(InputRefused):
    """An import that cannot land; the message is one line, and raw is unchanged.

    `shown` holds the first rejected rows, one line each, for the run's log.
    """

    def __init__(self, message: str, shown: list[str] | None = None) -> None:
        super().__init__(message)
        self.shown = list(shown or [])
