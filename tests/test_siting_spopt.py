"""Siting: our exact MCLP against PySAL spopt's ``MCLP`` on the same random instances.

Each instance is posed both ways:

- **spopt** (the reference): the dense demand × (existing + candidates) distance matrix,
  ``MCLP.from_cost_matrix(…, p_facilities=existing + p, predefined_facilities_arr=<existing>)``,
  solved by CBC through PuLP. Existing devices are predefined facilities, fixed in the solution.
- **ours**: demand already within ``r`` of an existing device is dropped, the (uncovered demand,
  candidate) pairs within ``r`` come from ``geo.core.distance.pairs_within``, and
  ``geo.core.siting.solve_exact`` picks ``p`` new sites.

Both count a distance equal to ``r`` as covered (spopt builds ``aij`` with
``cost_matrix <= service_radius`` in ``spopt/locate/coverage.py``, although its docstring writes
``d_ij < S``; ``pairs_within`` is inclusive). Coordinates are random floats, so exact ties at
``r`` do not occur anyway. The optimal covered weight (existing coverage included) must agree.
"""

from __future__ import annotations

import numpy as np
import pulp
import pytest
from scipy.spatial.distance import cdist
from spopt.locate import MCLP

from geo.core.distance import StraightLine, pairs_within
from geo.core.siting import SitingProblem, solve_exact

pytestmark = [
    # PuLP 3.3 (pulp/pulp.py, LpVariable.__init__) deprecates building variables directly, which
    # spopt 0.7 does for every variable (spopt/locate/base.py, FacilityModelBuilder).
    pytest.mark.filterwarnings(
        r"ignore:Constructing LpVariable\(name, \.\.\.\) directly is deprecated:DeprecationWarning"
    ),
    # PuLP 3.3 (pulp/apis/coin_api.py) deprecates PULP_CBC_CMD, its bundled CBC, in favour of
    # COIN_CMD with a separately installed CBC; the bundled one is what spopt documents.
    pytest.mark.filterwarnings(r"ignore:PULP_CBC_CMD is deprecated:DeprecationWarning"),
]

SIDE_M = 1_500.0
STRAIGHT = StraightLine(1.0)


def instance(
    seed: int, *, n_demand: int, n_existing: int, n_candidates: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Demand (half in three neighbourhoods, half anywhere), integer weights, devices, sites.

    Metric coordinates in a 1.5 km square; weights 1–40 residents per point.
    """
    rng = np.random.default_rng(seed)
    n_clustered = n_demand // 2
    centres = rng.uniform(300.0, SIDE_M - 300.0, size=(3, 2))
    clustered = centres[rng.integers(0, 3, n_clustered)] + rng.normal(
        scale=150.0, size=(n_clustered, 2)
    )
    scattered = rng.uniform(0.0, SIDE_M, size=(n_demand - n_clustered, 2))
    demand = np.clip(np.vstack([clustered, scattered]), 0.0, SIDE_M)
    weights = rng.integers(1, 41, n_demand)
    existing = rng.uniform(0.0, SIDE_M, size=(n_existing, 2))
    candidates = rng.uniform(0.0, SIDE_M, size=(n_candidates, 2))
    return demand, weights, existing, candidates


def spopt_covered_weight(
    demand: np.ndarray,
    weights: np.ndarray,
    existing: np.ndarray,
    candidates: np.ndarray,
    *,
    p: int,
    radius_m: float,
) -> float:
    """spopt's optimum: weight within ``radius_m`` of any chosen facility, existing included."""
    facilities = np.vstack([existing, candidates])
    distance = cdist(demand, facilities)
    predefined = np.zeros(len(facilities), dtype=bool)
    predefined[: len(existing)] = True
    model = MCLP.from_cost_matrix(
        distance,
        weights,
        service_radius=radius_m,
        p_facilities=len(existing) + p,
        predefined_facilities_arr=predefined,
    )
    model.solve(pulp.PULP_CBC_CMD(msg=False))  # raises unless PuLP reports "Optimal"
    chosen = np.array([var.value() > 0.5 for var in model.fac_vars])
    assert chosen[: len(existing)].all(), "spopt dropped a predefined (existing) device"
    assert chosen.sum() == len(existing) + p
    covered = (distance[:, chosen] <= radius_m).any(axis=1)
    value = float(weights[covered].sum())
    # Weights are positive, so at the optimum spopt's objective is exactly the covered weight.
    assert model.problem.objective.value() == pytest.approx(value, abs=1e-6)
    return value


CASES = [
    # seed, demand, existing, candidates, p, radius (m)
    pytest.param(11, 150, 3, 25, 3, 150.0, id="150x25-existing3-p3-r150"),
    pytest.param(12, 150, 4, 25, 5, 200.0, id="150x25-existing4-p5-r200"),
    pytest.param(13, 200, 5, 30, 4, 250.0, id="200x30-existing5-p4-r250"),
    pytest.param(14, 150, 0, 25, 6, 180.0, id="150x25-no-existing-p6-r180"),
    pytest.param(15, 250, 6, 40, 8, 220.0, id="250x40-existing6-p8-r220"),
]


@pytest.mark.parametrize(("seed", "n_demand", "n_existing", "n_candidates", "p", "radius_m"), CASES)
def test_exact_matches_spopt_mclp(
    seed: int, n_demand: int, n_existing: int, n_candidates: int, p: int, radius_m: float
) -> None:
    demand, weights, existing, candidates = instance(
        seed, n_demand=n_demand, n_existing=n_existing, n_candidates=n_candidates
    )
    reference = spopt_covered_weight(demand, weights, existing, candidates, p=p, radius_m=radius_m)

    already = np.zeros(n_demand, dtype=bool)
    already[pairs_within(demand, existing, radius_m=radius_m, model=STRAIGHT).unit] = True
    uncovered = np.flatnonzero(~already)
    reach = pairs_within(demand[uncovered], candidates, radius_m=radius_m, model=STRAIGHT)
    problem = SitingProblem.from_pairs(
        reach.unit, reach.device, weight=weights[uncovered], n_candidates=n_candidates
    )
    result = solve_exact(problem, p=p)

    assert result.status == "optimal"
    assert result.gap == 0.0
    assert len(result.chosen) <= p
    ours = float(weights[already].sum()) + result.objective
    assert ours == pytest.approx(reference, abs=1e-6)

    # Our chosen sites, checked on the dense matrix, really cover what our objective says.
    sites = np.vstack([existing, candidates[np.asarray(result.chosen, dtype=np.int64)]])
    covered = (cdist(demand, sites) <= radius_m).any(axis=1)
    assert float(weights[covered].sum()) == pytest.approx(ours, abs=1e-6)
