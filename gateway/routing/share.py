"""A route's cap on the share of requests sent to its top tier ("at most X% to large").

``CompiledRoute`` (``table``) owns one ``ShareCap`` per route with ``max_large_percent``. It
keeps the route's last ``window`` complexity scores in a ring and recomputes the cut above which
at most X% of them lie: first when ``_MIN_SAMPLES`` scores are in (no cap before), then every
``max(16, window // 64)`` scores, which amortizes the sort. The route's threshold is the larger
of its quality mode's and that cut. State is per gateway process and per config generation (a
reload starts a new window): with N processes each holds its own share, which the law of large
numbers keeps close to X% across them.
"""

from __future__ import annotations

from math import floor, inf, nextafter

_MIN_SAMPLES = 50


class ShareCap:
    """At most ``percent``% of the last ``window`` scores reach the threshold it returns."""

    __slots__ = ("_cut", "_every", "_next", "_ring", "_seen", "percent", "window")

    def __init__(self, percent: float, window: int) -> None:
        self.percent = percent
        self.window = window
        self._ring: list[float] = []
        self._next = 0
        self._seen = 0
        self._every = max(16, window // 64)  # amortizes the sort: O(window log window) / every
        self._cut = 0.0

    def threshold(self, floor_value: float) -> tuple[float, bool]:
        """(the threshold to use, whether the cap raised it above ``floor_value``)."""
        if self._cut > floor_value:
            return self._cut, True
        return floor_value, False

    def observe(self, score: float) -> None:
        if len(self._ring) < self.window:
            self._ring.append(score)
        else:
            self._ring[self._next] = score
            self._next = (self._next + 1) % self.window
        self._seen += 1
        if self._seen == _MIN_SAMPLES or (
            self._seen > _MIN_SAMPLES and self._seen % self._every == 0
        ):
            self._cut = cut(self._ring, self.percent)


def cut(scores: list[float], percent: float) -> float:
    """The lowest threshold with at most ``percent``% of ``scores`` at or above it."""
    ordered = sorted(scores)
    n = len(ordered)
    allowed = floor(n * percent / 100)
    if allowed >= n:
        return 0.0
    if allowed == 0:
        return nextafter(ordered[-1], inf)
    edge = ordered[n - allowed]
    if ordered[n - allowed - 1] == edge:  # a tie at the edge would let more through
        return nextafter(edge, inf)
    return edge
