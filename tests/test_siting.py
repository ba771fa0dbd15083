"""Siting: exact equals brute force, greedy's order and guarantee, targets, and the layers."""

from __future__ import annotations

import datetime as dt
import itertools
import math
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from geo.city import CityProfile
from geo.core.distance import to_metric
from geo.core.siting import (
    MAX_GRID_POINTS,
    SitingProblem,
    build_problem,
    candidate_grid,
    objective_conflicts,
    solve_exact,
    solve_greedy,
    solve_target,
    zones_after,
)
from geo.errors import SitingError
from geo.io.files import read_layers

CRS = "EPSG:25830"
X, Y = 373_000.0, 4_651_000.0
MONDAY = dt.date(2026, 11, 23)


def problem_of(cover: list[list[int]], weight: list[float]) -> SitingProblem:
    """``cover[j]`` lists the demand units candidate ``j`` reaches."""
    unit = np.array([i for column in cover for i in column], dtype=np.int64)
    candidate = np.array([j for j, column in enumerate(cover) for _ in column], dtype=np.int64)
    return SitingProblem.from_pairs(
        unit, candidate, weight=np.array(weight, dtype=float),
        candidate_ids=np.array([f"c{j}" for j in range(len(cover))], dtype=object),
    )  # fmt: skip


def brute_force(problem: SitingProblem, p: int) -> float:
    n = problem.n_candidates
    return max(
        problem.value(np.array(chosen, dtype=np.int64))
        for chosen in itertools.combinations(range(n), min(p, n))
    )


# A hand-checkable instance: weights 10, 8, 7, 5, 3 on units 0..4.
#   c0 covers {0}        = 10      c1 covers {1, 2} = 15      c2 covers {0, 3} = 15
#   c3 covers {2, 3, 4}  = 15      c4 covers {4}    = 3
HAND = problem_of([[0], [1, 2], [0, 3], [2, 3, 4]], [10, 8, 7, 5, 3])


def test_greedy_order_and_gains_by_hand() -> None:
    result = solve_greedy(HAND, p=2)
    # Ties at 15 go to the lowest index: c1 first; then c2 adds 15 (units 0, 3), c3 only 8.
    assert result.chosen == ("c1", "c2")
    assert result.steps["weight_gained"].tolist() == [15.0, 15.0]
    assert result.status == "greedy" and result.gap is None


def test_exact_by_hand_beats_greedy_where_greedy_is_myopic() -> None:
    problem = problem_of([[0, 1, 2, 3], [0, 1, 4], [2, 3, 5]], [1, 1, 1, 1, 1, 1])
    # Greedy takes the big middle set c0 (4), then c1 adds only unit 4: 5. Best: c1 + c2 = 6.
    greedy = solve_greedy(problem, p=2)
    assert greedy.chosen == ("c0", "c1") and greedy.objective == 5
    exact = solve_exact(problem, p=2)
    assert exact.objective == 6 and exact.status == "optimal" and exact.gap == 0.0
    assert set(exact.chosen) == {"c1", "c2"}
    assert exact.steps["residents_covered_new"].tolist() == [3, 6]


def test_p_larger_than_useful_candidates() -> None:
    result = solve_exact(HAND, p=10)
    assert result.objective == 33 and result.status == "optimal"


@pytest.mark.parametrize("p", [0, -1])
def test_p_must_be_positive(p: int) -> None:
    with pytest.raises(SitingError, match="al menos 1"):
        solve_exact(HAND, p=p)


def test_target_mode() -> None:
    assert len(solve_target(HAND, weight_needed=30).chosen) == 2
    assert len(solve_target(HAND, weight_needed=31).chosen) == 3
    exact = solve_target(HAND, weight_needed=31, method="exact")
    assert len(exact.chosen) == 3 and exact.objective >= 31
    with pytest.raises(SitingError, match="no se alcanza"):
        solve_target(HAND, weight_needed=34)


@st.composite
def instances(draw: st.DrawFn) -> tuple[SitingProblem, int]:
    n_units = draw(st.integers(1, 14))
    n_candidates = draw(st.integers(1, 7))
    cover = [
        sorted(draw(st.sets(st.integers(0, n_units - 1), max_size=n_units)))
        for _ in range(n_candidates)
    ]
    weight = draw(st.lists(st.integers(0, 50), min_size=n_units, max_size=n_units))
    return problem_of(cover, [float(w) for w in weight]), draw(st.integers(1, n_candidates))


PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(instance=instances())
def test_exact_equals_brute_force_and_bounds_greedy(instance: tuple[SitingProblem, int]) -> None:
    problem, p = instance
    best = brute_force(problem, p)
    exact = solve_exact(problem, p=p)
    greedy = solve_greedy(problem, p=p)
    assert exact.objective == pytest.approx(best)
    assert exact.status == "optimal"
    assert greedy.objective <= exact.objective + 1e-9
    assert greedy.objective >= (1 - 1 / math.e) * exact.objective - 1e-9
    assert sum(exact.steps["weight_gained"]) == pytest.approx(exact.objective)
    gains = greedy.steps["weight_gained"].tolist()
    assert gains == sorted(gains, reverse=True)  # marginal gains never grow (submodularity)


# --- from layers ------------------------------------------------------------------------------


def device(ident: str, x: float, y: float) -> dict[str, object]:
    return {"id": ident, "status": "active", "verification": "verified", "access": "yes",
            "is_mobile": False, "opening_hours": "24/7", "operator_entity_id": None,
            "geometry": shapely.Point(X + x, Y + y)}  # fmt: skip


def test_build_problem_leaves_covered_residents_out(city: CityProfile) -> None:
    population = gpd.GeoDataFrame(
        {"id": ["near", "far1", "far2", "empty"], "residents": [100, 40, 60, 0],
         "residents_65_plus": [10, 20, 5, 0]},
        geometry=[shapely.Point(X + 10, Y), shapely.Point(X + 1000, Y),
                  shapely.Point(X + 1050, Y), shapely.Point(X + 2000, Y)],
        crs=CRS,
    )  # fmt: skip
    devices = gpd.GeoDataFrame([device("d", 0, 0)], geometry="geometry", crs=CRS)
    candidates = gpd.GeoDataFrame(
        {"id": ["k-near", "k-far"]},
        geometry=[shapely.Point(X + 5, Y), shapely.Point(X + 1025, Y)],
        crs=CRS,
    )
    problem, baseline = build_problem(population, devices, candidates, city, reference_date=MONDAY)
    assert problem.residents.tolist() == [40, 60]  # "near" is covered, "empty" has nobody
    result = solve_exact(problem, p=1)
    assert result.chosen == ("k-far",) and result.residents_gained == 100
    weighted, _ = build_problem(
        population, devices, candidates, city, senior_weight=3.0, reference_date=MONDAY
    )
    assert weighted.weight.tolist() == [80.0, 70.0]
    assert baseline["residents_covered"].sum() == 100


def test_build_problem_refuses_bad_candidates(city: CityProfile) -> None:
    population = gpd.GeoDataFrame(
        {"id": ["a"], "residents": [1], "residents_65_plus": [0]},
        geometry=[shapely.Point(X, Y)], crs=CRS,
    )  # fmt: skip
    devices = gpd.GeoDataFrame([device("d", 5000, 0)], geometry="geometry", crs=CRS)
    empty = gpd.GeoDataFrame({"id": []}, geometry=[], crs=CRS)
    with pytest.raises(SitingError, match="candidatos"):
        build_problem(population, devices, empty, city)
    twice = gpd.GeoDataFrame({"id": ["x", "x"]}, geometry=[shapely.Point(X, Y)] * 2, crs=CRS)
    with pytest.raises(SitingError, match="único"):
        build_problem(population, devices, twice, city)
    with pytest.raises(SitingError, match="65"):
        build_problem(population, devices, twice.head(1), city, senior_weight=0.5)


def test_siting_on_the_palencia_sample(city: CityProfile) -> None:
    layers = read_layers(Path(__file__).resolve().parent.parent / "data", city)
    metric = {name: to_metric(frame, city) for name, frame in layers.frames.items()}
    problem, baseline = build_problem(
        metric["population"], metric["defibrillators"], metric["population"][["id", "geometry"]],
        city, zones=metric["ceas"], reference_date=MONDAY,
    )  # fmt: skip
    exact = solve_exact(problem, p=5)
    greedy = solve_greedy(problem, p=5)
    assert exact.status == "optimal"
    assert greedy.objective <= exact.objective
    assert greedy.objective >= 0.98 * exact.objective
    table = zones_after(baseline, problem, exact)
    gained = (table["residents_covered_after"] - table["residents_covered"]).sum()
    assert gained == exact.residents_gained > 0
    assert (table["share_covered_after"] >= table["share_covered"]).all()


@PROPERTY
@given(instance=instances(), fraction=st.floats(0.05, 1.0))
def test_target_exact_is_the_fewest_devices(
    instance: tuple[SitingProblem, int], fraction: float
) -> None:
    problem, _ = instance
    reachable = float(problem.weight[problem.reach_count() > 0].sum())
    goal = fraction * reachable
    if goal <= 0:
        return
    exact = solve_target(problem, weight_needed=goal, method="exact")
    greedy = solve_target(problem, weight_needed=goal)
    fewest = next(
        k for k in range(1, problem.n_candidates + 1) if brute_force(problem, k) >= goal - 1e-9
    )
    assert len(exact.chosen) == fewest <= len(greedy.chosen)
    assert exact.objective >= goal - 1e-9 and greedy.objective >= goal - 1e-9


def test_identical_reach_sets_are_merged_without_changing_the_weight() -> None:
    from geo.core.siting import _merged_rows

    problem = problem_of([[0, 1, 2], [1, 2, 3]], [4, 5, 6, 7])  # units 1 and 2: same reach
    cover, weight = _merged_rows(problem)
    assert cover.shape == (3, 2)
    assert sorted(weight.tolist()) == [4.0, 7.0, 11.0]
    exact = solve_exact(problem, p=1)
    assert exact.objective == 18 and exact.status == "optimal"
    assert exact.gap == 0.0 and exact.bound == pytest.approx(exact.objective)


def test_a_grid_too_fine_for_memory_is_refused_before_it_is_built() -> None:
    population = gpd.GeoDataFrame(
        geometry=[shapely.Point(X, Y), shapely.Point(X + 20_000, Y + 20_000)], crs=CRS
    )
    assert len(candidate_grid(population, spacing_m=100)) > 0
    with pytest.raises(SitingError, match="use una separación"):
        candidate_grid(population, spacing_m=20_000 / math.sqrt(MAX_GRID_POINTS) / 2)


def test_objective_rules_refuse_the_other_objective_s_parameters() -> None:
    def given(objective: str, **options: Any) -> list[tuple[str, str]]:
        values = {"target_share": None, "target_lives": None, "senior_weight": 1.0, **options}
        return [(c.field, c.message) for c in objective_conflicts(objective, **values)]

    assert given("residents", target_share=0.8, senior_weight=2.0) == []
    assert given("lives", target_lives=1.0) == []
    assert given("residents", target_lives=1.0) == [
        ("target_lives",
         "target_lives solo vale con objective=lives; con residents use target_share."),
    ]  # fmt: skip
    assert [field for field, _ in given("lives", target_share=0.5, senior_weight=2.0)] == [
        "target_share",
        "senior_weight",
    ]
    # The command line spells the same rule with its options.
    [(field, message)] = given(
        "residents",
        target_lives=1.0,
        lives_options=["parameters", "set"],
        spell=lambda name, value: f"--{name.replace('_', '-')}" + (f" {value}" if value else ""),
    )
    assert field == "target_lives"
    assert message == (
        "--target-lives, --parameters y --set solo valen con --objective lives; con residents "
        "use --target-share."
    )
