"""The delivery ledger: which week's report went to which chat, so it is sent once.

A delivery is claimed (status 'sending') in its own committed transaction before
anything is sent, under an advisory lock, so two runs can never both send the same
week. A claim left 'sending' by a crashed run blocks later runs until `--resend`: a
report that may have arrived is not sent again silently.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import psycopg

from churn.warehouse.connection import Warehouse

LEDGER_DDL = """
create schema if not exists reporting;
create table if not exists reporting.report_deliveries (
    delivery_id bigserial primary key,
    as_of_date date not null,
    chat_id text not null,
    status text not null check (status in ('sending', 'sent', 'failed')),
    message_ids bigint[] not null default '{}',
    report_text text not null,
    error_message text,
    started_at timestamptz not null default now(),
    finished_at timestamptz
);
create index if not exists report_deliveries_week_chat_idx
    on reporting.report_deliveries (as_of_date, chat_id);
"""


@dataclass(frozen=True)
class PriorDelivery:
    delivery_id: int
    status: str
    message_ids: list[int]
    started_at: dt.datetime


@dataclass(frozen=True)
class Claim:
    """The outcome of trying to claim a week's delivery."""

    delivery_id: int | None
    prior: PriorDelivery | None

    @property
    def granted(self) -> bool:
        return self.delivery_id is not None


def _lock_key(as_of: dt.date, chat_id: str) -> str:
    return f"churn-report:{as_of.isoformat()}:{chat_id}"


def claim_delivery(
    warehouse: Warehouse, as_of: dt.date, chat_id: str, report_text: str, *, resend: bool
) -> Claim:
    """Record that this run is about to send, unless the week was sent (or is being sent)."""
    with warehouse.connect() as conn, conn.transaction():
        conn.execute(LEDGER_DDL)
        conn.execute("select pg_advisory_xact_lock(hashtext(%s))", (_lock_key(as_of, chat_id),))
        row = conn.execute(
            """
            select delivery_id, status, message_ids, started_at
            from reporting.report_deliveries
            where as_of_date = %s and chat_id = %s and status in ('sent', 'sending')
            order by delivery_id desc
            limit 1
            """,
            (as_of, chat_id),
        ).fetchone()
        prior = PriorDelivery(row[0], row[1], list(row[2]), row[3]) if row else None
        if prior is not None and not resend:
            return Claim(None, prior)
        inserted = conn.execute(
            """
            insert into reporting.report_deliveries (as_of_date, chat_id, status, report_text)
            values (%s, %s, 'sending', %s)
            returning delivery_id
            """,
            (as_of, chat_id, report_text),
        ).fetchone()
        assert inserted is not None
        delivery_id = int(inserted[0])
    return Claim(delivery_id, prior)


def record_sent_message(warehouse: Warehouse, delivery_id: int, message_id: int) -> None:
    """Append one confirmed Telegram message id to a delivery as soon as it is known."""
    with warehouse.connect() as conn:
        conn.execute(
            "update reporting.report_deliveries "
            "set message_ids = array_append(message_ids, %s) where delivery_id = %s",
            (message_id, delivery_id),
        )


def finish_delivery(
    warehouse: Warehouse, delivery_id: int, *, error_message: str | None = None
) -> None:
    """Mark a claimed delivery sent, or failed with a (secret-free) reason."""
    status = "failed" if error_message else "sent"
    with warehouse.connect() as conn:
        conn.execute(
            """
            update reporting.report_deliveries
            set status = %s, error_message = %s, finished_at = now()
            where delivery_id = %s
            """,
            (status, error_message, delivery_id),
        )


def deliveries_for(warehouse: Warehouse, as_of: dt.date) -> list[tuple[str, str, list[int]]]:
    """(chat, status, message ids) of every delivery of a week, oldest first."""
    with warehouse.connect() as conn:
        try:
            rows = conn.execute(
                "select chat_id, status, message_ids from reporting.report_deliveries "
                "where as_of_date = %s order by delivery_id",
                (as_of,),
            ).fetchall()
        except psycopg.errors.UndefinedTable:
            return []
    return [(row[0], row[1], list(row[2])) for row in rows]
