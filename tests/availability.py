"""What a test does when something it needs (a Docker engine, a browser) is missing.

On a developer's machine it skips and prints why. Under CI (CI=true, as `.ci/run` is
run) it fails instead: CI installs and starts everything these tests need, so a missing
piece there is a broken setup, never a reason to pass silently.
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"true", "1", "yes"}


def unavailable(reason: str) -> NoReturn:
    """Skip with `reason` printed, or fail with it under CI."""
    if in_ci():
        pytest.fail(f"{reason} (CI is set: failing rather than skipping)", pytrace=False)
    print(f"\nskipped: {reason}")
    pytest.skip(reason)
