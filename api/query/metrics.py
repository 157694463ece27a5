"""Metric values from a group's counts, the same for every store and the reference.

The stores return integer aggregates only (visitors, visits, pageviews, events, the pageviews,
bounces and seconds of the visits); ratios are rounded half up in integer arithmetic, so both
stores sort and show exactly the same values. Rounding as Plausible shows them: bounce rate and
visit duration to integers, views per visit to two decimals, percentage and conversion rate to
one.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["AGGREGATES", "SCALE", "display", "scaled"]

AGGREGATES = (
    "visitors",
    "visits",
    "pageviews",
    "events",
    "visit_pageviews",
    "bounces",
    "duration",
)
# metric -> (numerator, denominator, multiplier): round_half_up(numerator * multiplier / den),
# shown divided by SCALE[metric].
RATIOS: dict[str, tuple[str, str, int]] = {
    "views_per_visit": ("visit_pageviews", "visits", 100),
    "bounce_rate": ("bounces", "visits", 100),
    "visit_duration": ("duration", "visits", 1),
    "percentage": ("visitors", "total_visitors", 1000),
    "conversion_rate": ("visitors", "conversion_visitors", 1000),
}
SCALE = {"views_per_visit": 100, "percentage": 10, "conversion_rate": 10}


def _half_up(numerator: int, denominator: int) -> int:
    return (2 * numerator + denominator) // (2 * denominator)


def scaled(metric: str, counts: Mapping[str, int]) -> int | None:
    """The metric as an integer (hundredths of views per visit, tenths of a percent…).

    ``counts`` holds the group's AGGREGATES plus ``total_visitors`` and ``conversion_visitors``
    when percentage or conversion rate are asked. None: a percentage of nothing.
    """
    ratio = RATIOS.get(metric)
    if ratio is None:
        return int(counts[metric])
    numerator, denominator, multiplier = ratio
    den = int(counts[denominator])
    if den == 0:
        return None if metric == "percentage" else 0
    return _half_up(int(counts[numerator]) * multiplier, den)


def display(metric: str, value: int | None) -> int | float | None:
    """The scaled integer as the API shows it."""
    if value is None or metric not in SCALE:
        return value
    return value / SCALE[metric]
