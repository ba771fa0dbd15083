"""Siting: where the next defibrillators protect the most people.

The maximal covering location problem (MCLP): choose ``p`` new sites among candidates so that the
residents newly covered — within ``radius_m`` of walking of a new device, and not already covered
by an available existing device — are as many as possible. Existing devices stay fixed.

Built two ways, like PySAL spopt's models but leaner:

- :func:`build_problem` checks the layers, finds who is already covered (via
  :mod:`geo.core.coverage`), finds every (uncovered unit, candidate) pair in reach, and delegates to
- :class:`SitingProblem`, the core: a sparse demand × candidate coverage matrix and a weight per
  demand unit. Only pairs in range exist, so the model grows with the pairs, not with
  demand × candidates.

Solvers return frozen :class:`SitingResult` values:

- :func:`solve_greedy` — the order in which to install devices, each step's gain (lazy
  evaluation: a candidate's gain only shrinks, so stale upper bounds are re-evaluated only when
  they reach the top of the heap). Within (1 − 1/e) of the optimum.
- :func:`solve_exact` — the MCLP as a mixed-integer programme solved by HiGHS
  (``scipy.optimize.milp``), with a time limit and a relative gap; the real solver status is
  reported, and a time-limited answer is never worse than greedy's.
- :func:`solve_target` — the fewest new devices reaching a coverage goal.
"""

from __future__ import annotations

import datetime as dt
import heapq
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
from scipy import sparse
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.spatial import cKDTree

from geo.city import CityProfile
from geo.core.availability import (
    ReportFlag,
    available,
    device_availability,
)
from geo.core.coverage import DEFAULT_RADIUS_M, coverage
from geo.core.distance import DistanceModel, StraightLine, metric_xy, pairs_within
from geo.errors import InputError, SitingError

#: The two objectives of siting: residents newly covered, or expected lives saved a year.
OBJECTIVES = ("residents", "lives")

#: What a step of a plan may do: install a new device (``new``), or open an existing device
#: around the clock (``extend_hours``: 24/7 hours, or a move to an outdoor cabinet at the same
#: spot; the model gives both the same gain, see :func:`extension_candidates`).
ACTIONS = ("new", "extend_hours")
#: How the command line and the query spell each action.
ACTION_SPELLINGS = {"new": "new", "extend-hours": "extend_hours", "extend_hours": "extend_hours"}
#: Where a new-device candidate stands on an extendable device (the same building): the
#: extension is proposed instead (the same reach, no new device to buy).
SAME_SPOT_M = 10.0


def parse_actions(value: str | Sequence[str], *, field: str = "actions") -> tuple[str, ...]:
    """The actions a plan may mix, from ``"new,extend-hours"`` (or a list), in :data:`ACTIONS`
    order without repeats.

    Raises
    ------
    InputError
        An empty list or an unknown value (code ``invalid_actions``; the message, in Spanish,
        names ``field`` and lists the accepted values).
    """
    items = value.split(",") if isinstance(value, str) else list(value)
    words = [item.strip().lower() for item in items if item.strip()]
    unknown = [word for word in words if word not in ACTION_SPELLINGS]
    if unknown or not words:
        shown = f"«{unknown[0]}» no es una acción" if unknown else "falta al menos una acción"
        msg = (
            f"{field}: {shown}; se admite new (nuevo desfibrilador) y extend-hours (abrir 24 h "
            "un desfibrilador existente), separadas por comas, p. ej. new,extend-hours."
        )
        raise InputError(msg, code="invalid_actions", field=field.lstrip("-"))
    chosen = {ACTION_SPELLINGS[word] for word in words}
    return tuple(action for action in ACTIONS if action in chosen)


def plain_name(name: str, value: str | None = None) -> str:
    """A parameter as a query or a Python call spells it: ``objective=lives``."""
    return name if value is None else f"{name}={value}"


@dataclass(frozen=True)
class ObjectiveConflict:
    """A parameter given to the objective it does not belong to, and what to do instead."""

    field: str
    message: str


def objective_conflicts(
    objective: str,
    *,
    target_share: float | None,
    target_lives: float | None,
    senior_weight: float,
    lives_options: Sequence[str] = (),
    spell: Callable[[str, str | None], str] = plain_name,
) -> list[ObjectiveConflict]:
    """The parameters that do not belong to ``objective``: the one place these rules are
    written (the CLI, the API and :func:`geo.services.analysis.siting_analysis` ask here).

    ``residents`` weighs residents (``senior_weight``) and may aim at ``target_share``;
    ``lives`` weighs expected lives, whose rates by age already weigh the elderly, and may aim
    at ``target_lives``. ``lives_options`` names further options only ``lives`` takes (the
    CLI's ``parameters`` and ``set``). ``spell(name, value)`` writes a parameter as the user
    types it: ``--objective lives`` on the command line, ``objective=lives`` in a query.
    """
    lives = spell("objective", "lives")
    if objective != "lives":
        given = ["target_lives"] if target_lives is not None else []
        given += list(lives_options)
        if not given:
            return []
        names = [spell(name, None) for name in given]
        listed = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} y {names[-1]}"
        verb = "vale" if len(names) == 1 else "valen"
        message = (
            f"{listed} solo {verb} con {lives}; con residents use {spell('target_share', None)}."
        )
        return [ObjectiveConflict(given[0], message)]
    conflicts = []
    if target_share is not None:
        message = (
            f"{spell('target_share', None)} es del objetivo residents; con {lives} use "
            f"{spell('target_lives', None)}."
        )
        conflicts.append(ObjectiveConflict("target_share", message))
    if senior_weight != 1.0:
        message = (
            f"{spell('senior_weight', None)} es del objetivo residents; con {lives} las tasas "
            "por edad ya pesan a los mayores."
        )
        conflicts.append(ObjectiveConflict("senior_weight", message))
    return conflicts


@dataclass(frozen=True, eq=False)
class SitingProblem:
    """Demand units not yet covered, and which candidate sites would cover each.

    Attributes
    ----------
    cover
        Sparse boolean matrix (demand units × candidates), CSC: ``cover[i, j]`` when candidate
        ``j`` is within reach of unit ``i``.
    weight
        What covering each unit is worth (residents, or residents with 65+ weighted more).
    residents, seniors
        Per demand unit, to report people rather than weights.
    candidate_ids
        Ids of the candidates, in column order.
    zone
        Zone id of each demand unit (``None`` outside every zone), for per-zone reports.
    pair_value
        Optional sparse matrix (demand units × candidates), CSC, with the same pattern as
        ``cover``: what candidate ``j`` is worth at unit ``i`` when it is the best chosen site
        there (the survival-weighted covering model: e.g. expected lives saved, which fall with
        distance). A unit is then worth the best value among the chosen sites, not a fixed
        weight; ``None`` is the classic MCLP (``weight[i]`` once any chosen site covers ``i``).
    """

    cover: sparse.csc_array
    weight: np.ndarray
    residents: np.ndarray
    seniors: np.ndarray
    candidate_ids: np.ndarray
    zone: np.ndarray
    pair_value: sparse.csc_array | None = None

    @classmethod
    def from_pairs(
        cls,
        unit: np.ndarray,
        candidate: np.ndarray,
        *,
        weight: np.ndarray,
        residents: np.ndarray | None = None,
        seniors: np.ndarray | None = None,
        candidate_ids: np.ndarray | None = None,
        zone: np.ndarray | None = None,
        n_candidates: int | None = None,
        value: np.ndarray | None = None,
    ) -> SitingProblem:
        """The core constructor: (unit, candidate) pairs in reach and a weight per unit.

        With ``value`` (one number per pair), each pair is worth its own value (see the class);
        ``weight`` then only orders ties and reports.
        """
        n_units = len(weight)
        n = n_candidates if n_candidates is not None else int(candidate.max(initial=-1)) + 1
        if candidate_ids is not None:
            n = len(candidate_ids)
        if np.any(np.asarray(weight) < 0):
            msg = "Los pesos de la demanda no pueden ser negativos."
            raise SitingError(msg)
        data = np.ones(len(unit), dtype=bool)
        cover = sparse.csc_array((data, (unit, candidate)), shape=(n_units, n), dtype=bool)
        values = None
        if value is not None:
            if len(value) != len(unit) or np.any(np.asarray(value) < 0):
                msg = "Hace falta un valor no negativo por cada par (unidad, candidato)."
                raise SitingError(msg)
            values = sparse.csc_array(
                (np.asarray(value, dtype=float), (unit, candidate)), shape=(n_units, n)
            )
            values.sort_indices()
            cover = (values > 0).astype(bool).tocsc()
            cover.sort_indices()
        residents = np.asarray(weight if residents is None else residents, dtype=np.int64)
        return cls(
            cover=cover,
            weight=np.asarray(weight, dtype=float),
            residents=residents,
            seniors=np.zeros(n_units, np.int64) if seniors is None else np.asarray(seniors),
            candidate_ids=np.arange(n).astype(object) if candidate_ids is None else candidate_ids,
            zone=np.full(n_units, None, dtype=object) if zone is None else zone,
            pair_value=values,
        )

    @property
    def n_candidates(self) -> int:
        return int(self.cover.shape[1])

    def reach_count(self) -> np.ndarray:
        """How many candidates reach each demand unit."""
        return np.bincount(self.cover.indices, minlength=self.cover.shape[0])

    def covered_by(self, chosen: np.ndarray) -> np.ndarray:
        """Which demand units the ``chosen`` candidate indices cover."""
        if len(chosen) == 0:
            return np.zeros(self.cover.shape[0], dtype=bool)
        return np.asarray(self.cover[:, np.asarray(chosen)].sum(axis=1)).ravel() > 0

    def value(self, chosen: np.ndarray) -> float:
        """Total weight the ``chosen`` candidates cover (the best pair value per unit, with
        ``pair_value``)."""
        if self.pair_value is None:
            return float(self.weight[self.covered_by(chosen)].sum())
        if len(chosen) == 0:
            return 0.0
        best = self.pair_value[:, np.asarray(chosen)].max(axis=1)
        return float(best.toarray().sum() if hasattr(best, "toarray") else np.sum(best))

    def column(self, j: int) -> tuple[np.ndarray, np.ndarray]:
        """Units candidate ``j`` reaches and what it is worth at each."""
        start, stop = self.cover.indptr[j], self.cover.indptr[j + 1]
        rows = self.cover.indices[start:stop]
        if self.pair_value is None:
            return rows, self.weight[rows]
        start, stop = self.pair_value.indptr[j], self.pair_value.indptr[j + 1]
        return self.pair_value.indices[start:stop], self.pair_value.data[start:stop]


@dataclass(frozen=True)
class SitingResult:
    """Chosen sites, in the order to install them, with what each adds.

    ``steps`` has one row per chosen site: ``step`` (1 = first to install), ``candidate_id``,
    ``weight_gained``, ``residents_gained``, ``residents_65_plus_gained``,
    ``residents_covered_new`` (cumulative). ``status`` is the solver's real word: ``optimal``,
    ``time_limit`` (best found when the time ran out), ``greedy`` (no optimality claim).
    ``gap`` is the proven relative gap to the bound (0 when optimal; ``None`` for greedy).
    """

    method: str
    status: str
    gap: float | None
    objective: float
    bound: float | None
    steps: pd.DataFrame
    seconds: float

    @property
    def chosen(self) -> tuple[str, ...]:
        return tuple(self.steps["candidate_id"])

    @property
    def residents_gained(self) -> int:
        return int(self.steps["residents_gained"].sum())


def _steps(problem: SitingProblem, order: list[int]) -> pd.DataFrame:
    """Per step, what each chosen site adds given the ones before it.

    ``residents_gained`` counts the residents of units no site chosen before reached.
    """
    best = np.zeros(problem.cover.shape[0])
    reached = np.zeros(problem.cover.shape[0], dtype=bool)
    rows = []
    for step, j in enumerate(order, start=1):
        column, worth = problem.column(j)
        gain = np.maximum(worth - best[column], 0.0)
        new = column[~reached[column]]
        reached[column] = True
        best[column] = np.maximum(best[column], worth)
        rows.append(
            {
                "step": step,
                "candidate_id": problem.candidate_ids[j],
                "weight_gained": float(gain.sum()),
                "residents_gained": int(problem.residents[new].sum()),
                "residents_65_plus_gained": int(problem.seniors[new].sum()),
            }
        )
    frame = pd.DataFrame(
        rows,
        columns=[
            "step",
            "candidate_id",
            "weight_gained",
            "residents_gained",
            "residents_65_plus_gained",
        ],
    )
    frame["residents_covered_new"] = frame["residents_gained"].cumsum().astype(np.int64)
    return frame


def _check_p(problem: SitingProblem, p: int) -> int:
    if p < 1:
        msg = f"El número de nuevos desfibriladores debe ser al menos 1 (recibido {p})."
        raise SitingError(msg)
    if problem.n_candidates == 0:
        msg = "No hay emplazamientos candidatos a menos del radio de ningún residente sin cubrir."
        raise SitingError(msg)
    return min(p, problem.n_candidates)


def greedy_order(problem: SitingProblem, p: int, *, stop_at: float = np.inf) -> list[int]:
    """Up to ``p`` candidate indices in greedy order (lazy marginal gains), best first.

    Stops early when no candidate adds anything, or once the weight covered reaches ``stop_at``.
    """
    best = np.zeros(problem.cover.shape[0])  # what each unit is worth so far
    if problem.pair_value is None:
        gains = np.asarray(problem.cover.T.astype(float) @ problem.weight).ravel()
    else:
        gains = np.asarray(problem.pair_value.sum(axis=0)).ravel()
    # Min-heap of (−upper bound on gain, candidate): the best bound first, ties to the lowest
    # index. A popped candidate is taken only if its fresh gain still beats every other bound.
    heap = [(-g, j) for j, g in enumerate(gains) if g > 0]
    heapq.heapify(heap)
    order: list[int] = []
    total = 0.0
    while heap and len(order) < p:
        _, j = heapq.heappop(heap)
        column, worth = problem.column(j)
        gain = float(np.maximum(worth - best[column], 0.0).sum())
        if gain <= 0:
            continue
        if heap and (-gain, j) > heap[0]:
            heapq.heappush(heap, (-gain, j))  # stale: re-queue with the fresh gain
            continue
        order.append(j)
        best[column] = np.maximum(best[column], worth)
        total += gain
        if total >= stop_at - 1e-9:
            break
    return order


def solve_greedy(problem: SitingProblem, *, p: int) -> SitingResult:
    """Greedy with lazy marginal gains: the installation order and each step's gain."""
    p = _check_p(problem, p)
    start = time.perf_counter()
    order = greedy_order(problem, p)
    steps = _steps(problem, order)
    seconds = time.perf_counter() - start
    return SitingResult(
        "greedy", "greedy", None, float(steps["weight_gained"].sum()), None, steps, seconds
    )


def solve_exact(
    problem: SitingProblem,
    *,
    p: int,
    time_limit_s: float = 60.0,
    mip_rel_gap: float = 1e-9,
) -> SitingResult:
    """The MCLP solved by HiGHS to proven optimality, or to ``mip_rel_gap`` / ``time_limit_s``.

    Formulation (only pairs in range): maximise Σ wᵢ yᵢ subject to yᵢ ≤ Σ_{j covers i} xⱼ,
    Σ xⱼ = p, xⱼ ∈ {0, 1}, 0 ≤ yᵢ ≤ 1 (yᵢ is integral at the optimum whenever x is). Demand units
    no candidate reaches are left out. The chosen sites are reported in greedy order among
    themselves, so each step's gain reads as for :func:`solve_greedy`.

    Demand units reached by exactly the same candidates are merged into one row (their weights
    summed) before solving: the same optimum with far fewer rows when the radius is large.

    ``status`` is ``optimal`` only when the optimum is proven (gap ≈ 0); ``gap`` when the solver
    stopped at the requested ``mip_rel_gap``; ``time_limit`` when the time ran out. ``gap`` and
    ``bound`` are the solver's proven ones, for the answer returned: if a stopped solve is worse
    than greedy's answer, greedy's is returned and the gap is recomputed for it.
    """
    p = _check_p(problem, p)
    if problem.pair_value is not None:
        return _solve_exact_values(problem, p, time_limit_s=time_limit_s, mip_rel_gap=mip_rel_gap)
    start = time.perf_counter()
    cover, weight = _merged_rows(problem)  # (m distinct reach sets × n candidates)
    m, n = cover.shape
    greedy = greedy_order(problem, p)
    greedy_value = problem.value(np.array(greedy, dtype=np.int64))
    if len(greedy) < p or m == 0:
        # Fewer useful candidates than p: greedy already covers every reachable unit.
        return _exact_result(problem, greedy, "optimal", 0.0, greedy_value, start)
    objective = np.concatenate([np.zeros(n), -weight])
    budget = sparse.csr_array(np.concatenate([np.ones(n), np.zeros(m)])[None, :])
    constraints = [_link(cover), LinearConstraint(budget, p, p)]
    integrality = np.concatenate([np.ones(n), np.zeros(m)])
    solved = milp(
        objective,
        constraints=constraints,
        integrality=integrality,
        bounds=Bounds(0.0, 1.0),
        # The model is already reduced (merged rows, only pairs in reach): HiGHS's presolve
        # finds little more and costs more than it saves (bench/siting.py: 10k × 1,000 at
        # 100 m, 0.13 s → 0.05 s; at 200 m, p = 10, 1.9 s → 1.6 s).
        options={
            "time_limit": time_limit_s,
            "mip_rel_gap": mip_rel_gap,
            "presolve": False,
            "disp": False,
        },
    )
    return _solved_result(problem, solved, n, greedy, greedy_value, start)


_OPTIMALITY_TOLERANCE = 1e-6


def _solved_result(
    problem: SitingProblem,
    solved: Any,
    n: int,
    greedy: list[int],
    greedy_value: float,
    start: float,
    *,
    scale: float = 1.0,
) -> SitingResult:
    """The result of a budget solve: HiGHS's answer, or greedy's if the solve did no better.

    ``scale``: what the objective was divided by (its bound is scaled back).
    """
    if solved.x is None:
        return _exact_result(problem, greedy, "time_limit", None, greedy_value, start)
    chosen = np.flatnonzero(solved.x[:n] > 0.5)
    value = problem.value(chosen)
    dual = solved.mip_dual_bound
    bound = -float(dual) * scale if dual is not None else None
    if value < greedy_value:
        chosen, value = np.array(greedy, dtype=np.int64), greedy_value
    gap = _gap(value, bound)
    if solved.status != 0:
        status = "time_limit"
    elif gap is not None and gap > _OPTIMALITY_TOLERANCE:
        status = "gap"
    else:
        status = "optimal"
    ordered = _in_greedy_order(problem, chosen)
    return _exact_result(problem, ordered, status, gap, value, start, bound=bound)


def _value_model(
    problem: SitingProblem,
) -> tuple[list[LinearConstraint], np.ndarray, int, float]:
    """The survival-weighted covering constraints over [x (candidates), z (pairs)].

    The pair values are returned divided by the largest (also returned): values such as lives
    per year (10⁻⁷–10⁻³) sit at HiGHS's fixed absolute tolerances, which would otherwise end a
    solve early and still call it optimal.

    zᵤⱼ ≤ xⱼ (a pair counts only if its site is chosen) and Σⱼ zᵤⱼ ≤ 1 (a unit counts once,
    at the value of one chosen site: the best, at the optimum). Returns the constraints, each
    pair's value and the number of candidates.
    """
    assert problem.pair_value is not None
    pairs = problem.pair_value.tocoo()
    keep = pairs.data > 0
    unit, candidate, worth = pairs.row[keep], pairs.col[keep], pairs.data[keep]
    n, k = problem.n_candidates, len(worth)
    index = np.arange(k)
    link = sparse.csr_array(
        (
            np.concatenate([np.ones(k), -np.ones(k)]),
            (np.concatenate([index, index]), np.concatenate([n + index, candidate])),
        ),
        shape=(k, n + k),
    )
    units, row = np.unique(unit, return_inverse=True)
    once = sparse.csr_array((np.ones(k), (row, n + index)), shape=(len(units), n + k))
    constraints = [LinearConstraint(link, -np.inf, 0), LinearConstraint(once, -np.inf, 1)]
    scale = float(worth.max(initial=0.0)) or 1.0
    return constraints, worth / scale, n, scale


def _solve_exact_values(
    problem: SitingProblem, p: int, *, time_limit_s: float, mip_rel_gap: float
) -> SitingResult:
    """:func:`solve_exact` for a problem with pair values (a maximal-benefit location model)."""
    start = time.perf_counter()
    greedy = greedy_order(problem, p)
    greedy_value = problem.value(np.array(greedy, dtype=np.int64))
    if len(greedy) < p:
        # Fewer useful candidates than p: greedy takes every one that adds anything.
        return _exact_result(problem, greedy, "optimal", 0.0, greedy_value, start)
    constraints, worth, n, scale = _value_model(problem)
    budget = sparse.csr_array(np.concatenate([np.ones(n), np.zeros(len(worth))])[None, :])
    solved = milp(
        np.concatenate([np.zeros(n), -worth]),
        constraints=[*constraints, LinearConstraint(budget, p, p)],
        integrality=np.concatenate([np.ones(n), np.zeros(len(worth))]),
        bounds=Bounds(0.0, 1.0),
        options={"time_limit": time_limit_s, "mip_rel_gap": mip_rel_gap, "disp": False},
    )
    return _solved_result(problem, solved, n, greedy, greedy_value, start, scale=scale)


def _gap(value: float, bound: float | None) -> float | None:
    """Relative distance from ``value`` to the proven ``bound`` (0 = proven optimal)."""
    if bound is None or not np.isfinite(bound):
        return None
    return max(0.0, bound - value) / max(abs(bound), 1e-12)


def _merged_rows(problem: SitingProblem) -> tuple[sparse.csc_array, np.ndarray]:
    """Reachable demand units grouped by identical candidate sets, with summed weights."""
    rows = problem.cover.tocsr()
    reachable = np.flatnonzero(np.diff(rows.indptr) > 0)
    keys = [rows.indices[rows.indptr[i] : rows.indptr[i + 1]].tobytes() for i in reachable]
    _, first, group = np.unique(
        np.array(keys, dtype=object), return_index=True, return_inverse=True
    )
    weight = np.bincount(group, weights=problem.weight[reachable], minlength=len(first))
    merged = rows[reachable[first], :].tocsc().astype(float)
    return merged, weight


def _in_greedy_order(problem: SitingProblem, chosen: np.ndarray) -> list[int]:
    """The ``chosen`` candidate indices in greedy order among themselves (zero gains last)."""
    order = greedy_order(_restricted(problem, chosen), len(chosen))
    ordered = [int(chosen[k]) for k in order]
    return ordered + [int(j) for j in chosen if int(j) not in ordered]


def _link(cover: sparse.csc_array) -> LinearConstraint:
    """yᵢ ≤ Σ_{j covers i} xⱼ, over variables [x (candidates), y (demand units)]."""
    m = cover.shape[0]
    return LinearConstraint(sparse.hstack([-cover, sparse.eye_array(m)], format="csr"), -np.inf, 0)


def _restricted(problem: SitingProblem, chosen: np.ndarray) -> SitingProblem:
    return SitingProblem(
        problem.cover[:, chosen],
        problem.weight,
        problem.residents,
        problem.seniors,
        problem.candidate_ids[chosen],
        problem.zone,
        None if problem.pair_value is None else problem.pair_value[:, chosen],
    )


def _exact_result(
    problem: SitingProblem,
    order: list[int],
    status: str,
    gap: float | None,
    value: float,
    start: float,
    *,
    bound: float | None = None,
) -> SitingResult:
    steps = _steps(problem, order)
    seconds = time.perf_counter() - start
    if status == "optimal" and bound is None:  # optimal without a solve (p ≥ useful candidates)
        gap, bound = 0.0, value
    return SitingResult("exact", status, gap, value, bound, steps, seconds)


def solve_target(
    problem: SitingProblem,
    *,
    weight_needed: float,
    method: str = "greedy",
    time_limit_s: float = 60.0,
) -> SitingResult:
    """The fewest new devices whose new coverage reaches ``weight_needed``.

    ``greedy`` adds the best site until the goal is met; ``exact`` solves
    min Σ xⱼ s.t. Σ wᵢ yᵢ ≥ goal with HiGHS. Raises :class:`SitingError` when even every
    candidate together cannot reach the goal.
    """
    if problem.pair_value is None:
        reachable_value = float(problem.weight[problem.reach_count() > 0].sum())
    else:
        reachable_value = problem.value(np.arange(problem.n_candidates))
    if weight_needed <= 0:
        return SitingResult(method, "optimal", 0.0, 0.0, 0.0, _steps(problem, []), 0.0)
    if weight_needed > reachable_value + 1e-9:
        msg = (
            "El objetivo no se alcanza ni instalando un desfibrilador en todos los candidatos "
            f"(como mucho se cubriría un peso de {reachable_value:,.0f} más de lo actual)."
        )
        raise SitingError(msg)
    start = time.perf_counter()
    greedy = greedy_order(problem, problem.n_candidates, stop_at=weight_needed)
    if method == "greedy":
        steps = _steps(problem, greedy)
        seconds = time.perf_counter() - start
        return SitingResult(
            "greedy", "greedy", None, float(steps["weight_gained"].sum()), None, steps, seconds
        )
    if method != "exact":
        msg = f"Método {method!r} desconocido; se admite greedy o exact."
        raise SitingError(msg)
    if problem.pair_value is None:
        cover, weight = _merged_rows(problem)
        m, n = cover.shape
        constraints = [_link(cover)]
    else:
        constraints, weight, n, scale = _value_model(problem)
        m = len(weight)
        weight_needed = weight_needed / scale
    goal = sparse.csr_array(np.concatenate([np.zeros(n), weight])[None, :])
    solved = milp(
        np.concatenate([np.ones(n), np.zeros(m)]),
        constraints=[*constraints, LinearConstraint(goal, weight_needed, np.inf)],
        integrality=np.concatenate([np.ones(n), np.zeros(m)]),
        bounds=Bounds(0.0, 1.0),
        options={"time_limit": time_limit_s, "disp": False},
    )
    if solved.x is None or len(np.flatnonzero(solved.x[:n] > 0.5)) >= len(greedy):
        status = "optimal" if solved.status == 0 else "time_limit"
        return _exact_result(problem, greedy, status, None, problem.value(np.array(greedy)), start)
    chosen = np.flatnonzero(solved.x[:n] > 0.5)
    status = "optimal" if solved.status == 0 else "time_limit"
    ordered = _in_greedy_order(problem, chosen)
    return _exact_result(problem, ordered, status, None, problem.value(chosen), start)


# --- from layers ------------------------------------------------------------------------------


def extension_candidates(
    devices: gpd.GeoDataFrame,
    city: CityProfile,
    *,
    reference_date: dt.date,
    count_overdue: bool = False,
    reports: Mapping[str, ReportFlag] | None = None,
) -> gpd.GeoDataFrame:
    """The devices whose hours could be extended to 24/7, as candidate sites (metric CRS).

    A device qualifies when it may count (in service, verified, fixed, public, hours known, not
    reported missing or broken, maintenance in date on ``reference_date`` unless
    ``count_overdue``) and is not already available at every moment of the 366 days from
    ``reference_date``'s week (:func:`geo.core.availability.available`).

    Posed at the device's own spot as an always-available site, an extension gains exactly
    what the device's closed hours lose: the residents it would cover around the clock, or
    (:func:`geo.core.outcomes.lives_siting_problem`) its ``gain_if_24_7``. Moving the device
    to an outdoor cabinet at the same spot reaches the same people at the same hours, so the
    model gives it the same gain; it differs in cost and works, not here.

    Columns ``id`` (``extend_hours:<device id>``), ``name``, ``kind`` and ``action``
    (``extend_hours``), ``device_id``, ``address``, ``geometry``.
    """
    columns = ["id", "name", "kind", "action", "device_id", "address"]
    if devices.empty:
        return gpd.GeoDataFrame({c: [] for c in columns}, geometry=[], crs=devices.crs)
    availability = device_availability(
        devices, timezone=city.timezone, calendar=city.calendar,
        count_overdue=count_overdue, reports=reports,
    )  # fmt: skip
    always = available(availability, at=None, reference_date=reference_date)
    usable = availability.counted() & availability.in_date(reference_date) & availability.known
    chosen = devices[usable & ~always]
    ids = chosen["id"].astype(str).to_numpy(dtype=object)
    names = chosen["name"] if "name" in chosen else chosen["id"]
    address = chosen["address"] if "address" in chosen else pd.Series([None] * len(chosen))
    return gpd.GeoDataFrame(
        {
            "id": [f"extend_hours:{i}" for i in ids],
            "name": names.to_numpy(dtype=object),
            "kind": "extend_hours",
            "action": "extend_hours",
            "device_id": ids,
            "address": address.to_numpy(dtype=object),
        },
        geometry=chosen.geometry.to_numpy(),
        crs=devices.crs,
    )


def with_extensions(
    new_sites: gpd.GeoDataFrame, extensions: gpd.GeoDataFrame
) -> tuple[gpd.GeoDataFrame, int]:
    """One candidate set for a mixed plan: the extensions first (a tie goes to them), then the
    new sites, less those within :data:`SAME_SPOT_M` of an extendable device (the extension
    is the same reach without a new device). Returns the set and how many new sites were left
    out that way. Both frames share one projected CRS.
    """
    new = new_sites.assign(action="new", device_id=None)
    dropped = 0
    if len(extensions) and len(new):
        distance, _ = cKDTree(metric_xy(extensions, "desfibriladores")).query(
            metric_xy(new, "candidatos"), k=1, distance_upper_bound=SAME_SPOT_M
        )
        same = np.isfinite(distance)
        dropped = int(same.sum())
        new = new[~same]
    frame = pd.concat([extensions.drop(columns="address"), new], ignore_index=True)
    return gpd.GeoDataFrame(frame, geometry="geometry", crs=new_sites.crs), dropped


def check_candidates(candidates: gpd.GeoDataFrame) -> None:
    """Candidate sites can be posed: at least one, each with a unique ``id``."""
    if candidates.empty:
        msg = "No hay emplazamientos candidatos."
        raise SitingError(msg)
    if "id" not in candidates or candidates["id"].duplicated().any():
        msg = "Los candidatos necesitan un campo id único."
        raise SitingError(msg)


def build_problem(
    population: gpd.GeoDataFrame,
    devices: gpd.GeoDataFrame,
    candidates: gpd.GeoDataFrame,
    city: CityProfile,
    *,
    radius_m: float = DEFAULT_RADIUS_M,
    at: dt.datetime | None = None,
    zones: gpd.GeoDataFrame | None = None,
    model: DistanceModel | None = None,
    senior_weight: float = 1.0,
    reference_date: dt.date | None = None,
    count_overdue: bool = False,
    reports: Mapping[str, ReportFlag] | None = None,
) -> tuple[SitingProblem, pd.DataFrame]:
    """Pose the MCLP for the layers (all in a projected CRS; see ``geo.core.distance.to_metric``).

    Residents already within reach of a device available at ``at`` (24/7 if ``None``) are
    covered and left out; a new device is assumed available whenever needed (an outdoor,
    24/7 cabinet). ``senior_weight`` counts each resident 65+ that many times (1 = people).

    Returns
    -------
    tuple
        The problem, and the baseline coverage per zone (``residents``, ``residents_covered``,
        ``residents_65_plus``, ``residents_65_plus_covered`` indexed by zone id) for
        before/after reports.
    """
    if senior_weight < 1:
        msg = f"El peso de los mayores de 65 debe ser ≥ 1 (recibido {senior_weight})."
        raise SitingError(msg)
    check_candidates(candidates)
    model = model or StraightLine()
    base = coverage(
        population,
        devices,
        city,
        radius_m=radius_m,
        at=at,
        zones=zones,
        model=model,
        reference_date=reference_date,
        count_overdue=count_overdue,
        reports=reports,
    )
    units = base.units
    open_units = np.flatnonzero(~units["covered"].to_numpy() & (units["residents"] > 0).to_numpy())
    xy = metric_xy(units, "población")[open_units]
    candidate_xy = metric_xy(candidates, "candidatos")
    reach = pairs_within(xy, candidate_xy, radius_m=radius_m, model=model)
    residents = units["residents"].to_numpy(dtype=np.int64)[open_units]
    seniors = units["residents_65_plus"].to_numpy(dtype=np.int64)[open_units]
    weight = residents + (senior_weight - 1.0) * seniors
    problem = SitingProblem.from_pairs(
        reach.unit,
        reach.device,
        weight=weight,
        residents=residents,
        seniors=seniors,
        candidate_ids=candidates["id"].to_numpy(dtype=object),
        zone=units["zone_id"].to_numpy(dtype=object)[open_units],
    )
    return problem, base.by_zone.set_index("zone_id", drop=False)


def zones_after(
    baseline: pd.DataFrame, problem: SitingProblem, result: SitingResult
) -> pd.DataFrame:
    """Per zone, residents covered before and after installing the chosen sites."""
    index = {cid: j for j, cid in enumerate(problem.candidate_ids)}
    chosen = np.array([index[c] for c in result.chosen], dtype=np.int64)
    newly = problem.covered_by(chosen)
    gained = pd.DataFrame(
        {
            "zone_id": problem.zone[newly],
            "residents": problem.residents[newly],
            "seniors": problem.seniors[newly],
        }
    )
    by_zone = gained.groupby("zone_id", dropna=False)[["residents", "seniors"]].sum()
    table = baseline[
        [
            "zone_id",
            "zone_name",
            "residents",
            "residents_covered",
            "residents_65_plus",
            "residents_65_plus_covered",
        ]
    ].copy()
    table["residents_covered_after"] = table["residents_covered"] + table["zone_id"].map(
        by_zone["residents"]
    ).fillna(0).astype(np.int64)
    table["residents_65_plus_covered_after"] = table["residents_65_plus_covered"] + table[
        "zone_id"
    ].map(by_zone["seniors"]).fillna(0).astype(np.int64)
    shares = table["residents"].where(table["residents"] > 0)
    table["share_covered"] = (table["residents_covered"] / shares).fillna(0.0)
    table["share_covered_after"] = (table["residents_covered_after"] / shares).fillna(0.0)
    return table.reset_index(drop=True)


#: Largest candidate grid built (a 20 × 20 km city every 20 m): beyond it memory runs out first.
MAX_GRID_POINTS = 1_000_000


def candidate_grid(
    population: gpd.GeoDataFrame, *, spacing_m: float, margin_m: float = 0.0
) -> gpd.GeoDataFrame:
    """A regular grid of candidate sites over the populated area (metric CRS).

    Points every ``spacing_m`` metres, aligned on multiples of the spacing, kept only where some
    demand unit lies within ``spacing_m + margin_m``. Ids read ``grid-<x>-<y>`` (metres).
    """
    if not spacing_m > 0:
        msg = f"La separación de la rejilla debe ser mayor que 0 m (recibida {spacing_m})."
        raise SitingError(msg)
    xy = np.column_stack([population.geometry.x.to_numpy(), population.geometry.y.to_numpy()])
    if len(xy) == 0:
        return gpd.GeoDataFrame({"id": []}, geometry=[], crs=population.crs)
    low = np.floor(xy.min(axis=0) / spacing_m) * spacing_m
    high = np.ceil(xy.max(axis=0) / spacing_m) * spacing_m
    points = np.prod((high - low) / spacing_m + 1)
    if points > MAX_GRID_POINTS:
        msg = (
            f"Una rejilla cada {spacing_m:g} m sobre la zona poblada tendría {points:,.0f} puntos "
            f"(máximo {MAX_GRID_POINTS:,}); use una separación (radio) mayor."
        ).replace(",", ".")
        raise SitingError(msg)
    gx, gy = np.meshgrid(
        np.arange(low[0], high[0] + 1, spacing_m), np.arange(low[1], high[1] + 1, spacing_m)
    )
    grid = np.column_stack([gx.ravel(), gy.ravel()])
    near = cKDTree(xy).query(grid, k=1, distance_upper_bound=spacing_m + margin_m)[0]
    grid = grid[np.isfinite(near)]
    ids = [f"grid-{int(x)}-{int(y)}" for x, y in grid]
    return gpd.GeoDataFrame(
        {"id": ids}, geometry=gpd.points_from_xy(grid[:, 0], grid[:, 1]), crs=population.crs
    )
