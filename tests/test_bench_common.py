"""A benchmark's child process reports its own peak RSS, not its parent's."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

from bench.common import PROJECT_ROOT, Budget, run_child

CHILD = """
import sys
sys.path.insert(0, {root!r})
from bench.common import serve_child

def grow(options):
    block = bytearray(options["mib"] * 2**20)
    block[:: 4096] = b"x" * len(block[:: 4096])
    return {{}}

serve_child(None, {{"grow": grow}})
"""


def test_a_child_reports_its_own_peak_rss_below_a_larger_parent(tmp_path: Path) -> None:
    script = tmp_path / "child.py"
    script.write_text(textwrap.dedent(CHILD.format(root=str(PROJECT_ROOT))))
    parent = bytearray(400 * 2**20)
    parent[::4096] = b"x" * len(parent[::4096])  # the parent now holds 400 MiB more
    budget = Budget.of(minutes=2, step_timeout=60)
    small = run_child(script, "grow", {"mib": 1}, budget)
    large = run_child(script, "grow", {"mib": 200}, budget)
    assert small["peak_rss"] < 200 * 2**20 < large["peak_rss"] < 400 * 2**20
    assert sys.getsizeof(parent) > 400 * 2**20
