"""Lines for the end of the test session's report, from whichever process wrote them.

Under pytest-xdist the tests run in worker processes and the report is printed by the
controller, so a note is a line appended to a file the whole session shares (its path
is set in the environment before the workers start); run in one process, the same file
serves.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from pathlib import Path

NOTES_ENV = "CHURN_TEST_SESSION_NOTES"
# The sections tests/conftest.py prints.
RELIABILITY = "reliability"
DOCKER_DEPLOYMENT = "docker deployment and UI"


def note(section: str, value: object) -> None:
    """Append one note (anything JSON can hold) under `section`."""
    path = os.environ.get(NOTES_ENV)
    if not path:
        return
    line = json.dumps({"section": section, "value": value})
    # One short write in append mode: lines from two workers never interleave.
    with Path(path).open("a", encoding="utf-8") as notes:
        notes.write(line + "\n")


def read_notes() -> dict[str, list[object]]:
    """Every note of the session so far, by section, in the order written."""
    path = os.environ.get(NOTES_ENV)
    found: dict[str, list[object]] = defaultdict(list)
    if not path or not Path(path).is_file():
        return found
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        found[record["section"]].append(record["value"])
    return found
