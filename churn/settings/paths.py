"""Where the pipeline keeps what it writes: generated files, the embedded warehouse, reports.

All of it is run output, never committed (the folders are gitignored), and each can be
moved with an environment variable (the Docker image and the tests do).
"""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DBT_PROJECT_DIR = PROJECT_ROOT / "dbt"
DATA_DIR_ENV = "CHURN_DATA_DIR"
REPORTS_DIR_ENV = "CHURN_REPORTS_DIR"


def data_dir() -> Path:
    """Generated files, dbt's run folders and the embedded warehouse (default `.data/`)."""
    return Path(os.environ.get(DATA_DIR_ENV) or PROJECT_ROOT / ".data").resolve()


def reports_dir() -> Path:
    """Dry-run reports, one folder per as-of date (default `reports/`)."""
    return Path(os.environ.get(REPORTS_DIR_ENV) or PROJECT_ROOT / "reports").resolve()
