"""Bandit tuners for ω and the learning SequenceSolver: probabilities, concentration, routing, persistence."""
import json

import numpy as np
import pytest

from optdsl.solvers.common import Status
from optdsl.solvers.linalg import bandit, sor
from optdsl.solvers.linalg.sequences import laplacian_2d, shifted_laplacian_sequence


def play(tuner, cost_fn, T, contexts=None):
    arms = []
    for t in range(T):
        c = None if contexts is None else contexts[t]
        a = tuner.select(c)
        tuner.update(a, cost_fn(t, a), c)
        arms.append(a)
    return np.array(arms)


def test_tsallis_probabilities_are_a_distribution():
    tuner = bandit.TsallisINF(15, seed=0)
    rng = np.random.default_rng(0)
    for t in range(60):
        p = tuner.probabilities()
        assert abs(p.sum() - 1) < 1e-6 and np.all(p > 0)
        # un-normalised Newton solution already sums to 1 (the normaliser converged)
        tuner.update(tuner.select(), float(rng.integers(50, 500)))
    L = tuner.K / tuner._scale()
    eta = 2 / np.sqrt(tuner.t + 1)
    x = L.min() - 2 / eta
    for _ in range(20):
        q = 4 / (eta * (L - x)) ** 2
        x -= (q.sum() - 1) / (eta * np.sum(q ** 1.5))
    assert abs((4 / (eta * (L - x)) ** 2).sum() - 1) < 1e-6


@pytest.mark.parametrize("kind", ["tsallis", "exp3"])
def test_stationary_environment_concentrates_on_cheapest_arm(kind):
    costs = np.array([300, 220, 150, 100, 60, 90, 140, 260.0])   # arm 4 is best
    rng = np.random.default_rng(1)
    tuner = bandit.make_tuner(kind, len(costs), seed=3)
    arms = play(tuner, lambda t, a: costs[a] * rng.uniform(0.9, 1.1), 600)
    assert tuner.best_arm() == 4
    assert np.mean(arms[-200:] == 4) > 0.6 if kind == "tsallis" else np.mean(arms[-200:] == 4) > 0.3
    regret = costs[arms].sum() - 600 * costs.min()
    early = costs[arms[:300]].mean() - costs.min()
    late = costs[arms[300:]].mean() - costs.min()
    assert late < early and regret / 600 < 0.6 * (costs.mean() - costs.min())


def test_binned_contextual_routes_to_nearest_centre():
    tuner = bandit.BinnedTsallisINF(5, context_range=(0.0, 1.0), n_bins=4, seed=0)
    np.testing.assert_allclose(tuner.centres, [0.125, 0.375, 0.625, 0.875])
    for c, expect in [(0.0, 0), (0.24, 0), (0.26, 1), (0.5001, 2), (0.99, 3), (-3.0, 0), (7.0, 3)]:
        assert tuner.bin_of(c) == expect
    tuner.update(2, 10.0, context=0.9)
    assert tuner.bins[3].t == 1 and sum(b.t for b in tuner.bins) == 1
    with pytest.raises(ValueError, match="context"):
        tuner.select(None)


@pytest.mark.parametrize("kind", ["binned", "chebcb", "smooth"])
def test_contextual_tuner_learns_context_dependent_arm(kind):
    # best arm is 1 for contexts < 0.5 and 4 for contexts >= 0.5
    def cost(c, a):
        best = 1 if c < 0.5 else 4
        return 50.0 + 40.0 * abs(a - best)
    rng = np.random.default_rng(2)
    ctx = rng.uniform(0, 1, 400)
    opts = {"binned": {"n_bins": 2}, "chebcb": {"degree": 2, "horizon": 400},
            "smooth": {"omegas": [1.0, 1.15, 1.3, 1.45, 1.6, 1.75]}}[kind]
    tuner = bandit.make_tuner(kind, 6, seed=1, context_range=(0, 1), **opts)
    arms = play(tuner, lambda t, a: cost(ctx[t], a), 400, ctx)
    assert tuner.best_arm(0.2) == 1 and tuner.best_arm(0.8) == 4
    total = sum(cost(c, a) for c, a in zip(ctx, arms))
    best_fixed = min(sum(cost(c, a) for c in ctx) for a in range(6))
    assert total < best_fixed


@pytest.mark.parametrize("kind,opts", [("tsallis", {}), ("exp3", {}), ("binned", {"context_range": (0, 1)}),
                                       ("chebcb", {"context_range": (0, 1)}),
                                       ("smooth", {"context_range": (0, 1), "omegas": np.linspace(1, 1.9, 7)}),
                                       ("young", {"context_range": (0, 1), "omegas": np.linspace(1, 1.9, 7)})])
def test_tuner_state_round_trip_gives_same_next_choices(kind, opts):
    rng = np.random.default_rng(0)
    t1 = bandit.make_tuner(kind, 7, seed=11, **opts)
    ctx = rng.uniform(0, 1, 80)
    play(t1, lambda t, a: 100 + 10 * a + rng.uniform(0, 5), 40, ctx)
    state = json.loads(json.dumps(t1.state_dict()))
    t2 = bandit.tuner_from_state(state)
    fixed = lambda t, a: 100.0 + 7 * abs(a - 3)
    assert list(play(t1, fixed, 40, ctx[40:])) == list(play(t2, fixed, 40, ctx[40:]))


def test_sequence_solver_concentrates_near_brute_force_best_omega():
    m = 8
    A = laplacian_2d(m)                        # same matrix every round, fresh right-hand sides
    grid = [1.0, 1.2, 1.35, 1.5, 1.65, 1.8, 1.95]
    rng = np.random.default_rng(5)
    bs = [rng.standard_normal(m * m) for _ in range(120)]
    M = sor.SORMatrix(A)
    brute = [sum(sor.solve(M, b, omega=w).iterations for b in bs[:10]) for w in grid]
    best = int(np.argmin(brute))
    solver = bandit.SequenceSolver(grid, "tsallis", warm_start=False, seed=0)
    outs = [solver.solve(A, b) for b in bs]
    assert all(o.status is Status.OPTIMAL for o in outs)
    late = np.array([r["arm"] for r in solver.rounds[-50:]])
    assert np.mean(np.abs(late - best) <= 1) > 0.7
    assert abs(solver.tuner.best_arm() - best) <= 1
    gs = sum(sor.solve(M, b, omega=1.0).iterations for b in bs)
    assert sum(o.iterations for o in outs) < 0.6 * gs


def test_sequence_solver_json_round_trip(tmp_path):
    seq = shifted_laplacian_sequence(30, 8, shifts="uniform", seed=2)
    s1 = bandit.SequenceSolver(None, "contextual", context_range=(0, 0.5), n_bins=2, seed=4, warm_start=False)
    for s in seq[:15]:
        s1.solve(s.A, s.b, context=s.context)
    path = tmp_path / "tuner.json"
    s1.to_json(str(path))
    s2 = bandit.SequenceSolver.from_json(str(path))
    assert s2.omegas == s1.omegas and s2.rounds == s1.rounds and s2.tuner.kind == "binned"
    a1 = [s1.solve(s.A, s.b, context=s.context).extras["omega"] for s in seq[15:]]
    a2 = [s2.solve(s.A, s.b, context=s.context).extras["omega"] for s in seq[15:]]
    assert a1 == a2
    assert json.loads(s1.to_json())["tuner"]["t"] == 30


def test_cost_cap_bounds_the_bandit_loss_and_fallback_still_solves():
    m = 10
    A = laplacian_2d(m)
    b = np.random.default_rng(0).standard_normal(m * m)
    solver = bandit.SequenceSolver([1.0, 1.7], bandit.FixedArm(2, 0), cap=40, warm_start=False)
    solver.tuner.probabilities = lambda context=None: np.array([0.0, 1.0])   # favourite = 1.7 for the fallback
    out = solver.solve(A, b)
    assert out.extras["capped"] and out.extras["cost"] == 40 and out.extras["fallback_omega"] == 1.7
    assert out.status is Status.OPTIMAL and out.certificates["residual"] <= 1e-8
    assert out.iterations < sor.solve(A, b, omega=1.0).iterations
    # adaptive cap: cap_factor x median of earlier costs
    s = bandit.SequenceSolver([1.7], bandit.FixedArm(1, 0), cap_factor=2.0, warm_start=False)
    first = s.solve(A, b).iterations
    assert s.solve(A, b).extras["cap"] == max(10, int(np.ceil(2.0 * first)))


def test_fixed_omega_and_errors():
    A = laplacian_2d(6)
    b = np.ones(36)
    s = bandit.SequenceSolver(tuner=1.5)
    out = s.solve(A, b)
    assert out.extras["omega"] == 1.5 and out.iterations == sor.solve(A, b, omega=1.5).iterations
    with pytest.raises(ValueError, match="omega must lie in"):
        bandit.SequenceSolver([1.0, 2.0])
    with pytest.raises(ValueError, match="context_range"):
        bandit.SequenceSolver(None, "contextual")
    with pytest.raises(ValueError, match="pass context"):
        bandit.SequenceSolver(None, "contextual", context_range=(0, 1)).solve(A, b)
    with pytest.raises(ValueError, match="unknown tuner"):
        bandit.SequenceSolver(None, "ucb")


def test_warm_start_reduces_iterations_on_a_slowly_changing_sequence():
    A = laplacian_2d(10)
    b = np.random.default_rng(0).standard_normal(100)
    cold = bandit.SequenceSolver(tuner=1.6, warm_start=False)
    warm = bandit.SequenceSolver(tuner=1.6, warm_start=True)
    ic = sum(cold.solve(A, b * (1 + 0.01 * t)).iterations for t in range(5))
    iw = sum(warm.solve(A, b * (1 + 0.01 * t)).iterations for t in range(5))
    assert iw < 0.85 * ic
    x, info = warm.as_spd_solver()(A, b, tol=1e-9)
    assert info["converged"] and info["omega"] == 1.6


def test_smooth_tuner_shares_information_across_arms():
    # cost curve of a shifted Laplacian: one round at a few arms suffices to locate the minimum
    grid = list(np.linspace(1.0, 1.9, 10))
    cost = lambda a: 40.0 + 400.0 * (grid[a] - 1.6) ** 2
    tuner = bandit.SmoothCB(10, omegas=grid, seed=0)
    arms = play(tuner, lambda t, a: cost(a), 40)
    assert abs(grid[tuner.best_arm()] - 1.6) < 0.11
    assert len(set(arms.tolist())) < 10 or np.mean(arms[-20:] == tuner.best_arm()) > 0.5
    with pytest.raises(ValueError, match="omegas has 3 values"):
        bandit.SmoothCB(4, omegas=[1.0, 1.2, 1.4])


def test_diverging_arm_is_charged_the_cap_and_the_call_still_solves():
    # a non-symmetric, nearly triangular matrix: Gauss–Seidel converges, SOR(1.9) blows up (ρ >= |ω−1| and more)
    rng = np.random.default_rng(0)
    n = 30
    A = np.eye(n) * 4 + np.triu(rng.uniform(-3, 3, (n, n)), 1) * 0.6 + np.tril(np.ones((n, n)), -1) * 0.05
    b = rng.standard_normal(n)
    assert sor.solve(A, b, omega=1.9, max_iter=3000).status is Status.NUMERICAL_ERROR
    assert sor.solve(A, b, omega=1.0).status is Status.OPTIMAL
    solver = bandit.SequenceSolver([1.0, 1.9], bandit.FixedArm(2, 1), max_iter=3000, warm_start=False)
    out = solver.solve(A, b)
    assert out.extras["capped"] and out.extras["cost"] == 3000 and out.extras["fallback_omega"] == 1.0
    assert out.status is Status.OPTIMAL and out.certificates["residual"] <= 1e-8
