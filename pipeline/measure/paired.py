"""Paired tests on the same test images, with `comparison.gate`'s exact McNemar test (one implementation).

Two answers on the same images differ only where one of them is right and the other wrong; McNemar's exact test
asks whether that split could be a fair coin's. `gate.mcnemar_p(a, b)` is P(X >= a) for X ~ Binomial(a + b, 1/2);
these sum the shorter tail, so a split of thousands costs milliseconds.
"""

from __future__ import annotations

from ..comparison.gate import SIGNIFICANCE, mcnemar_p

__all__ = ["SIGNIFICANCE", "better_than", "two_sided"]


def better_than(only_first: int, only_second: int) -> float:
    """One-sided p that the first answer is no better than the second: P(X >= a) = 1 - P(X >= b + 1)."""
    if only_first > only_second:
        return mcnemar_p(only_first, only_second)
    if only_first == 0:
        return 1.0
    return 1.0 - mcnemar_p(only_second + 1, only_first - 1)


def two_sided(only_first: int, only_second: int) -> float:
    """Two-sided p that the two answers are as good as each other (1.0 when they never differ)."""
    if only_first == only_second:
        return 1.0
    return min(1.0, 2.0 * mcnemar_p(max(only_first, only_second), min(only_first, only_second)))
