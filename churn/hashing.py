"""Deterministic 64-bit mixing: the same inputs give the same numbers on every machine."""

from __future__ import annotations

import numpy as np

MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def mix64(values: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser: a bijective, well-scrambling map on uint64."""
    with np.errstate(over="ignore"):
        z = values.astype(np.uint64, copy=True)
        z ^= z >> np.uint64(30)
        z *= np.uint64(0xBF58476D1CE4E5B9)
        z ^= z >> np.uint64(27)
        z *= np.uint64(0x94D049BB133111EB)
        z ^= z >> np.uint64(31)
    return z & MASK64


def combine(*columns: np.ndarray) -> np.ndarray:
    """One well-mixed 64-bit value per row of the given integer columns (an order matters)."""
    with np.errstate(over="ignore"):
        combined = np.zeros(len(columns[0]), dtype=np.uint64)
        for column in columns:
            combined = mix64(combined * np.uint64(0x9E3779B97F4A7C15) + column.astype(np.uint64))
    return combined
