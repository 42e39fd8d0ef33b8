"""The weekly report: its figures read from the marts, its Telegram text and its chart."""
