"""The plain code behind the pipeline's flows, one subpackage per concern.

- `churn.settings`: run parameters, paths, where credentials come from (Prefect blocks).
- `churn.simulation`: the behavioural shop simulation and its landing in `raw`.
- `churn.warehouse`: which PostgreSQL, connections, the raw layer, the embedded server.
- `churn.build`: the dbt build: its arguments, its invocation, what the last build was.
- `churn.report`: the report's figures read from the marts, its text and its chart.
- `churn.delivery`: Telegram delivery, the delivery ledger, the failure alert's text.

Nothing here imports a flow: `flows/` composes these pieces into Prefect flows and tasks.
See docs/architecture.md for how the pieces fit.
"""
