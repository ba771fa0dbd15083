"""Colour classes from the data: Fisher–Jenks natural breaks, for the planners' map.

Fixed steps (0–20 %, 20–40 %, …) paint every zone the same colour when coverage lies between 1 %
and 16 %; breaks taken from the values shown separate them. Pure numpy: the optimum of the
Fisher–Jenks dynamic programme over the distinct values, each weighted by how often it occurs
(the same breaks as ``mapclassify.FisherJenks`` on the raw values).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from geo.core.outputs import spanish_number

#: Coverage share, low (red) to high (green): ColorBrewer RdYlGn.
SHARE_PALETTE = ("#d73027", "#fc8d59", "#fee08b", "#d9ef8b", "#1a9850")
#: Residents without cover in a gap cell, few (light) to many (dark): ColorBrewer Reds.
GAP_PALETTE = ("#fcbba1", "#fb6a4a", "#cb181d", "#67000d")


@dataclass(frozen=True)
class Classes:
    """Classes of a set of values: ``uppers[i]`` is the (inclusive) top of class ``i``,
    ``lowest`` the smallest value; ``colours`` one per class."""

    lowest: float
    uppers: tuple[float, ...]
    colours: tuple[str, ...]

    def index(self, value: float) -> int:
        """The class of ``value`` (values beyond the range fall in the first or last class)."""
        return min(int(np.searchsorted(self.uppers, value, side="left")), len(self.uppers) - 1)

    def colour(self, value: float) -> str:
        return self.colours[self.index(value)]

    def labels(self, fmt: Callable[[float, int], str], *, min_decimals: int = 0) -> list[str]:
        """One label per class, ``"1,2–4,5"`` (``fmt(value, decimals)``), with the fewest
        decimals (``min_decimals`` to 3) that keep every limit distinct; a class of one value:
        that value alone."""
        limits = (self.lowest, *self.uppers)
        for decimals in range(min_decimals, 4):
            texts = [fmt(limit, decimals) for limit in limits]
            if len(set(texts[1:])) == len(self.uppers) and (
                texts[0] != texts[1] or self.lowest == self.uppers[0]
            ):
                break
        return [
            texts[i + 1] if texts[i] == texts[i + 1] else f"{texts[i]}–{texts[i + 1]}"
            for i in range(len(self.uppers))
        ]


def natural_breaks(values: Sequence[float] | np.ndarray, *, k: int) -> tuple[float, ...]:
    """The upper limits of at most ``k`` Fisher–Jenks classes of ``values`` (NaN ignored).

    The classes minimise the sum of squared deviations from each class mean. With fewer than
    ``k`` distinct values, one class per distinct value; with none, ``()``.
    """
    data = np.asarray(values, dtype=float)
    data = data[np.isfinite(data)]
    if data.size == 0:
        return ()
    distinct, counts = np.unique(data, return_counts=True)
    n = distinct.size
    k = max(1, min(k, n))
    if k == n:
        return tuple(float(v) for v in distinct)
    weights = counts.astype(float)
    # Prefix sums: the squared deviation of distinct[i:j] is sxx - sx² / sw.
    sw = np.concatenate([[0.0], np.cumsum(weights)])
    sx = np.concatenate([[0.0], np.cumsum(weights * distinct)])
    sxx = np.concatenate([[0.0], np.cumsum(weights * distinct**2)])

    def cost(i: np.ndarray, j: int) -> np.ndarray:
        """Squared deviation of the class distinct[i:j] for each start in ``i`` (< j)."""
        w = sw[j] - sw[i]
        s = sx[j] - sx[i]
        return np.maximum(sxx[j] - sxx[i] - s * s / w, 0.0)

    # best[c, j]: least cost of the first j values in c + 1 classes; start[c, j]: where the last
    # of those classes begins.
    best = np.full((k, n + 1), np.inf)
    start = np.zeros((k, n + 1), dtype=int)
    for j in range(1, n + 1):
        best[0, j] = cost(np.array([0]), j)[0]
    for c in range(1, k):
        for j in range(c + 1, n + 1):
            i = np.arange(c, j)  # the last class is distinct[i:j], the others fill [0, i)
            total = best[c - 1, i] + cost(i, j)
            pick = int(np.argmin(total))
            best[c, j] = total[pick]
            start[c, j] = int(i[pick])
    uppers: list[float] = []
    j = n
    for c in range(k - 1, -1, -1):
        uppers.append(float(distinct[j - 1]))
        j = start[c, j]
    return tuple(reversed(uppers))


def classes_of(
    values: Sequence[float] | np.ndarray, *, palette: Sequence[str], k: int | None = None
) -> Classes:
    """Natural-break classes of ``values`` (at most one per colour of ``palette``), coloured
    from the palette's ends inwards; all values equal (or none): one class."""
    data = np.asarray(values, dtype=float)
    data = data[np.isfinite(data)]
    uppers = natural_breaks(data, k=k or len(palette)) or (0.0,)
    picks = np.linspace(0, len(palette) - 1, len(uppers)).round().astype(int)
    lowest = float(data.min()) if data.size else 0.0
    return Classes(lowest, uppers, tuple(palette[i] for i in picks))


def percent(share: float, decimals: int) -> str:
    """A share as a Spanish percentage number, ``0.1234`` → ``"12,3"`` (one decimal)."""
    return spanish_number(share * 100, decimals)
