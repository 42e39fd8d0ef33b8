"""How far a long landing is: a bar on an interactive terminal, else a few log lines."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable

# Called after each chunk is landed: (units done so far, units in all), e.g. customers
# simulated or rows read.
ProgressCallback = Callable[[int, int], None]


class LandingProgress:
    """How far a long landing is: a bar on an interactive terminal, else a few log lines.

    Quiet for the first seconds, so a weekly landing says nothing more than its result.
    """

    def __init__(
        self,
        logger: logging.Logger | logging.LoggerAdapter,
        *,
        interactive: bool | None = None,
        quiet_seconds: float = 3.0,
        unit: str = "customers simulated",
    ) -> None:
        self.logger = logger
        self.unit = unit
        self.interactive = sys.stderr.isatty() if interactive is None else interactive
        self.quiet_seconds = quiet_seconds
        self.started = time.monotonic()
        self.next_quarter = 1
        self.bar_shown = False

    def __call__(self, done: int, total: int) -> None:
        elapsed = time.monotonic() - self.started
        share = done / total if total else 1.0
        if self.interactive:
            if elapsed >= self.quiet_seconds or self.bar_shown:
                self._draw(share, done, total)
            return
        # log lines at 25%, 50% and 75%, once the landing has proved long
        while self.next_quarter < 4 and share >= self.next_quarter / 4:
            self.next_quarter += 1
            if elapsed >= self.quiet_seconds:
                self.logger.info(
                    "Landing: %d%% (%s of %s %s, %.0f s)",
                    100 * share,
                    f"{done:,}",
                    f"{total:,}",
                    self.unit,
                    elapsed,
                )

    def _draw(self, share: float, done: int, total: int) -> None:
        width = 30
        filled = int(width * share)
        bar = "#" * filled + "-" * (width - filled)
        end = "\n" if done >= total else ""
        counted = f"{done:,}/{total:,} {self.unit.split()[0]}"
        sys.stderr.write(f"\rLanding [{bar}] {share:4.0%} {counted}{end}")
        sys.stderr.flush()
        self.bar_shown = True
