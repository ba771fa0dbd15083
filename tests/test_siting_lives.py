"""Siting by expected lives saved: the survival-weighted covering model, solvers and the CLI."""

from __future__ import annotations

import csv
import datetime as dt
import io
import itertools
import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from geo.cli import app
from geo.core.outcomes import lives_siting_problem, outcomes, with_new_devices
from geo.core.siting import SitingProblem, solve_exact, solve_greedy, solve_target
from geo.services.inputs import load_inputs, outcome_parameters
from geo.settings import Settings
from tests.conftest import DATA_DIR

runner = CliRunner()
WEEK = dt.date(2026, 10, 1)


def valued(pairs: dict[tuple[int, int], float], n_units: int, n_candidates: int) -> SitingProblem:
    unit = np.array([i for i, _ in pairs], dtype=np.int64)
    candidate = np.array([j for _, j in pairs], dtype=np.int64)
    return SitingProblem.from_pairs(
        unit, candidate, weight=np.zeros(n_units), value=np.array(list(pairs.values())),
        candidate_ids=np.array([f"c{j}" for j in range(n_candidates)], dtype=object),
    )  # fmt: skip


def brute_force(problem: SitingProblem, p: int) -> float:
    return max(
        problem.value(np.array(chosen, dtype=np.int64))
        for chosen in itertools.combinations(range(problem.n_candidates), p)
    )


# Unit 0 is worth 10 from c0 and 6 from c1; unit 1 is worth 6 from c1 and 9 from c2.
HAND = valued({(0, 0): 10.0, (0, 1): 6.0, (1, 1): 6.0, (1, 2): 9.0}, 2, 3)


def test_a_unit_is_worth_its_best_chosen_site() -> None:
    assert HAND.value(np.array([0, 1])) == pytest.approx(10 + 6)
    assert HAND.value(np.array([1])) == pytest.approx(6 + 6)
    assert HAND.value(np.array([1, 2])) == pytest.approx(6 + 9)  # not 6 + 6 + 9


def test_greedy_gains_are_over_what_is_already_there() -> None:
    steps = solve_greedy(HAND, p=3).steps
    # c1 (12) first; then c0 adds 10 − 6 = 4 and c2 adds 9 − 6 = 3.
    assert list(steps["candidate_id"]) == ["c1", "c0", "c2"]
    assert list(steps["weight_gained"]) == pytest.approx([12.0, 4.0, 3.0])


def test_exact_beats_greedy_where_greedy_is_myopic() -> None:
    # p = 2: greedy takes c1 then c0 (16); the optimum is c0 + c2 (19).
    assert solve_greedy(HAND, p=2).objective == pytest.approx(16.0)
    exact = solve_exact(HAND, p=2)
    assert exact.status == "optimal"
    assert exact.objective == pytest.approx(19.0) == pytest.approx(brute_force(HAND, 2))
    assert sorted(exact.chosen) == ["c0", "c2"]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.dictionaries(
        st.tuples(st.integers(0, 7), st.integers(0, 5)),
        st.floats(0.01, 10.0, allow_nan=False),
        min_size=1,
        max_size=30,
    ),
    st.integers(1, 4),
    st.sampled_from([1.0, 1e-6, 1e-8]),  # lives per year are tiny: HiGHS's tolerances
)
def test_exact_equals_brute_force_and_greedy_keeps_its_guarantee(
    pairs: dict[tuple[int, int], float], p: int, scale: float
) -> None:
    problem = valued({pair: value * scale for pair, value in pairs.items()}, 8, 6)
    best = brute_force(problem, p)
    exact = solve_exact(problem, p=p)
    assert exact.status == "optimal"
    greedy = solve_greedy(problem, p=p)
    assert exact.objective == pytest.approx(best, rel=1e-6)
    assert greedy.objective <= exact.objective + 1e-9
    assert greedy.objective >= (1 - 1 / np.e) * best - 1e-9
    assert exact.steps["weight_gained"].sum() == pytest.approx(exact.objective, rel=1e-9)


def test_equal_pair_values_are_the_classic_covering_model() -> None:
    cover = [[0], [1, 2], [0, 3], [2, 3, 4]]
    weight = np.array([10.0, 8, 7, 5, 3])
    unit = np.array([i for column in cover for i in column])
    candidate = np.array([j for j, column in enumerate(cover) for _ in column])
    classic = SitingProblem.from_pairs(unit, candidate, weight=weight)
    as_values = SitingProblem.from_pairs(unit, candidate, weight=weight, value=weight[unit])
    for p in (1, 2, 3):
        assert solve_exact(as_values, p=p).objective == pytest.approx(
            solve_exact(classic, p=p).objective
        )
        assert list(solve_greedy(as_values, p=p).steps["weight_gained"]) == pytest.approx(
            list(solve_greedy(classic, p=p).steps["weight_gained"])
        )


def test_fewest_sites_for_a_value_goal() -> None:
    # 19 needs c0 + c2; greedy gets there only with all three (12, 16, 19).
    greedy = solve_target(HAND, weight_needed=19.0)
    exact = solve_target(HAND, weight_needed=19.0, method="exact")
    assert len(greedy.chosen) == 3
    assert sorted(exact.chosen) == ["c0", "c2"]
    tiny = valued({pair: value * 1e-7 for pair, value in zip(
        [(0, 0), (0, 1), (1, 1), (1, 2)], [10.0, 6.0, 6.0, 9.0], strict=True)}, 2, 3)  # fmt: skip
    assert sorted(solve_target(tiny, weight_needed=19e-7, method="exact").chosen) == ["c0", "c2"]


def test_negative_pair_values_are_refused() -> None:
    with pytest.raises(ValueError, match="no negativo"):
        valued({(0, 0): -1.0}, 1, 1)


@pytest.fixture(scope="module")
def sample():  # type: ignore[no-untyped-def]
    settings_ = Settings()
    inputs = load_inputs(settings_.model_copy(update={"data_dir": DATA_DIR}), store=None)
    return inputs, outcome_parameters(settings_)


def test_the_gains_are_what_the_model_finds_with_the_new_devices(sample) -> None:  # type: ignore[no-untyped-def]
    inputs, parameters = sample
    metric = inputs.metric
    candidates = metric["entities"][["id", "name", "geometry"]]
    problem, before = lives_siting_problem(
        metric["population"], metric["defibrillators"], candidates, inputs.city, parameters,
        week_of=WEEK, zones=metric["ceas"],
    )  # fmt: skip
    result = solve_exact(problem, p=3)
    placed = candidates.set_index("id").loc[list(result.chosen)].reset_index()
    after = outcomes(
        metric["population"], with_new_devices(metric["defibrillators"], placed), inputs.city,
        parameters, week_of=WEEK, zones=metric["ceas"],
    )  # fmt: skip
    assert result.objective > 0
    assert after.lives_saved - before.lives_saved == pytest.approx(result.objective, rel=1e-9)
    # Each step's gain is what that site adds given the ones before it.
    first = candidates.set_index("id").loc[[result.chosen[0]]].reset_index()
    one = outcomes(
        metric["population"], with_new_devices(metric["defibrillators"], first), inputs.city,
        parameters, week_of=WEEK, zones=metric["ceas"],
    )  # fmt: skip
    gained = result.steps["weight_gained"].iloc[0]
    assert one.lives_saved - before.lives_saved == pytest.approx(gained, rel=1e-9)


def test_a_site_on_an_always_open_device_adds_nothing(sample) -> None:  # type: ignore[no-untyped-def]
    inputs, parameters = sample
    metric = inputs.metric
    devices = metric["defibrillators"]
    always = devices[devices["opening_hours"] == "24/7"]
    mobile = always["is_mobile"].fillna(False).astype(bool)
    usable = (always["status"] == "active") & (always["access"] == "yes") & ~mobile
    always = always[usable].head(1)
    assert len(always) == 1
    candidate = always[["id", "geometry"]].assign(name="en el mismo sitio")
    problem, _ = lives_siting_problem(
        metric["population"], devices, candidate, inputs.city, parameters, week_of=WEEK,
        zones=metric["ceas"],
    )  # fmt: skip
    assert problem.value(np.array([0])) == pytest.approx(0.0, abs=1e-15)  # float noise only


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, [*args, "--data-dir", str(DATA_DIR)])
    return result.exit_code, result.stdout, result.stderr


def test_site_by_lives_from_the_command_line() -> None:
    code, out, err = run(
        "site", "--objective", "lives", "--new", "3", "--candidates", "entities",
        "--week-of", "2026-10-01", "--format", "json",
    )  # fmt: skip
    assert code == 0, err
    document = json.loads(out)
    assert document["objective"] == "lives" and document["status"] == "optimal"
    assert document["radius_m"] == 200
    gained = sum(site["lives_gained"] for site in document["sites"])
    assert document["lives_gained"] == pytest.approx(gained, abs=1e-6)
    after, before = document["after"], document["before"]
    assert after["lives_saved"] == pytest.approx(before["lives_saved"] + gained, abs=1e-6)
    assert after["lives_saved_low"] <= after["lives_saved"] <= after["lives_saved_high"]
    zones = document["zones"]
    assert sum(z["lives_saved_after"] - z["lives_saved"] for z in zones) == pytest.approx(
        gained, abs=1e-5
    )


def test_devices_needed_for_lives_per_decade() -> None:
    code, out, err = run(
        "site", "--objective", "lives", "--target-lives", "0.3", "--lives-per", "decade",
        "--candidates", "all", "--method", "greedy", "--week-of", "2026-10-01",
        "--format", "json",
    )  # fmt: skip
    assert code == 0, err
    document = json.loads(out)
    assert document["mode"] == "target"
    assert document["target_lives"] == pytest.approx(0.03)
    assert document["after"]["lives_saved"] >= 0.03 - 1e-9
    assert document["new_devices"] == len(document["sites"]) > 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--objective", "lives", "--target-share", "0.5"], "--target-lives"),
        (["--target-lives", "1"], "--objective lives"),
        (["--objective", "lives", "--set", "reach_m"], "clave=valor"),
        (["--objective", "votes"], "votes"),
    ],
)
def test_bad_siting_options_are_explained(args: list[str], message: str) -> None:
    code, _, err = run("site", *args)
    assert code == 2
    assert message in err


def test_the_table_reads_in_lives_per_year() -> None:
    code, out, err = run("site", "--objective", "lives", "--new", "2", "--method", "greedy")
    assert code == 0, err
    assert "por vidas salvadas" in out and "+ vidas/año" in out
    assert "abierto 24/7" in out


def test_outcomes_csv_of_the_parameters_names_every_source() -> None:
    code, out, err = run("outcomes", "--by", "parameters", "--format", "csv")
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert {row["key"] for row in rows} >= {"incidence_per_100k", "survival_gain"}
    assert all(row["source"] for row in rows)
