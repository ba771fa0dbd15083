"""Colour classes from the data (geo/render/map_classes.py): natural breaks checked by hand and
against every partition of small samples, and their legend labels in Spanish."""

from __future__ import annotations

import itertools

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from geo.render.map_classes import SHARE_PALETTE, classes_of, natural_breaks, percent


def test_natural_breaks_split_where_the_values_jump() -> None:
    # Three clumps, by hand: the best 3-class split is between them.
    values = [0.01, 0.012, 0.015, 0.05, 0.055, 0.15, 0.16, 0.16]
    assert natural_breaks(values, k=3) == (0.015, 0.055, 0.16)
    assert natural_breaks(values, k=2) == (0.055, 0.16)


def test_few_distinct_values_give_one_class_each_and_equal_values_one() -> None:
    assert natural_breaks([0.2, 0.1, 0.2], k=5) == (0.1, 0.2)
    assert natural_breaks([0.3] * 6, k=5) == (0.3,)
    assert natural_breaks([float("nan")], k=5) == ()
    same = classes_of([0.07] * 4, palette=SHARE_PALETTE)
    assert same.uppers == (0.07,) and same.colours == (SHARE_PALETTE[0],)
    assert same.labels(percent) == ["7"]
    assert same.colour(0.07) == SHARE_PALETTE[0]


def test_coverage_between_one_and_sixteen_percent_gets_five_colours() -> None:
    # The case: fixed 20 % steps painted all of these the same red.
    shares = [0.01, 0.02, 0.03, 0.05, 0.06, 0.09, 0.11, 0.14, 0.16]
    classes = classes_of(shares, palette=SHARE_PALETTE)
    assert classes.colours == SHARE_PALETTE
    assert len({classes.colour(share) for share in shares}) == 5
    assert classes.colour(shares[0]) == SHARE_PALETTE[0]
    assert classes.colour(shares[-1]) == SHARE_PALETTE[-1]
    labels = classes.labels(percent)
    assert labels[0].startswith("1") and labels[-1].endswith("16")
    assert all("." not in label for label in labels)  # Spanish: decimal comma


def test_labels_take_the_decimals_that_keep_limits_apart() -> None:
    # One decimal would print 1,2 twice: two it is; a class of one value reads as that value.
    classes = classes_of([0.0121, 0.0124, 0.0126], palette=SHARE_PALETTE[:3])
    assert classes.labels(percent) == ["1,21", "1,21–1,24", "1,24–1,26"]
    spread = classes_of([0.0121, 0.0124, 0.0126, 0.3, 0.31], palette=SHARE_PALETTE[:3])
    assert spread.labels(percent) == ["1,2–1,3", "1,3–30,0", "30,0–31,0"]
    assert classes_of([0.0, 0.5, 1.0], palette=SHARE_PALETTE[:3]).labels(
        percent, min_decimals=1
    ) == ["0,0", "0,0–50,0", "50,0–100,0"]


def _brute_force_cost(values: np.ndarray, k: int) -> float:
    """The least within-class squared deviation over every split of sorted ``values``."""
    data = np.sort(values)
    best = np.inf
    for cuts in itertools.combinations(range(1, len(data)), k - 1):
        parts = np.split(data, cuts)
        best = min(best, sum(float(((p - p.mean()) ** 2).sum()) for p in parts))
    return best


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(0, 30), min_size=2, max_size=9).map(lambda v: np.array(v) / 100),
    st.integers(1, 4),
)
def test_natural_breaks_are_optimal(values: np.ndarray, k: int) -> None:
    uppers = natural_breaks(values, k=k)
    distinct = np.unique(values)
    assert len(uppers) == min(k, len(distinct))
    assert uppers[-1] == values.max()
    # Classes as the breaks define them: value ≤ upper, above the previous upper.
    index = np.searchsorted(np.array(uppers), values, side="left")
    cost = sum(
        float(((values[index == c] - values[index == c].mean()) ** 2).sum())
        for c in range(len(uppers))
    )
    # No split of the sorted values into as many classes does better (one that splits equal
    # values apart cannot either: each value belongs with its nearest class mean).
    assert cost <= _brute_force_cost(values, len(uppers)) + 1e-12
