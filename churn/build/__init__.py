"""The dbt build: its commands, its invocation, and what a warehouse's last build was."""
