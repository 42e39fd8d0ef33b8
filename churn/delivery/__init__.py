"""Delivery of the report: Telegram, the ledger that sends each week once, the failure alert."""
