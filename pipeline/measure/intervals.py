"""How precise a share measured on a few images is: Wilson score intervals (`edge_runtime.evaluate.wilson`, one
implementation for the device and here), and when a test set is small.

A share measured on n images (accuracy, agreement) is uncertain by about 1/sqrt(n): on 31 test images
one image is 3.2 points and a 95% interval spans some 30. Below `SMALL_TEST_SET` images the report
and `evaluate` show the interval beside each share; from there on it is left out as clutter (90% measured on
1,000 images: 88.0-91.7%; on 10,000: 89.4-90.6%).
"""

from __future__ import annotations

import math

from edge_runtime.evaluate import Z95, wilson

__all__ = ["SMALL_TEST_SET", "Z95", "Z95_ONE_SIDED", "images_to_show", "interval_text", "is_small", "wilson"]

Z95_ONE_SIDED = 1.644854  # one-sided 95%: a lower bound alone
SMALL_TEST_SET = 1000  # below this many test images, shares are shown with their interval


def is_small(total: int | None) -> bool:
    """True when shares measured on `total` images are uncertain enough to show their interval."""
    return bool(total) and total < SMALL_TEST_SET  # type: ignore[operator]


def share_interval(share: float, total: int | None) -> tuple[float, float] | None:
    """The 95% interval of a share measured on `total` images; None when the test set is not small."""
    if not total or not is_small(total):
        return None
    return wilson(round(share * total), total)


def interval_text(interval: tuple[float, float] | None) -> str:
    """`(37.8-70.8%)`, or nothing."""
    if interval is None:
        return ""
    return f" ({interval[0]:.1%}-{interval[1]:.1%})"


def images_to_show(share: float, z: float = Z95_ONE_SIDED) -> int:
    """The fewest images, all agreeing, whose Wilson lower bound reaches `share` (0..1): n / (n + z^2) >= share."""
    if share >= 1:
        return 0  # never: no finite number of images shows 100%
    return math.ceil(z * z * share / (1 - share))
