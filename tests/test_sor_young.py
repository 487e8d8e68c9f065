"""The model-based Young tuner: Young's relations, rate inversion on real SOR runs, and on a fixed sequence
total iterations near the brute-force best fixed ω (numbers measured, deterministic)."""
import json
import math

import numpy as np
import pytest

from optdsl.solvers.linalg import bandit, sor
from optdsl.solvers.linalg.sequences import laplacian_2d, shifted_laplacian_sequence
from optdsl.solvers.linalg.young import YoungModel, rho_from_rate, rho_star, sor_rate, tail_rate

GRID20 = [round(w, 2) for w in np.arange(1.0, 1.951, 0.05)]


@pytest.mark.parametrize("rho", [0.5, 0.9, 0.99])
def test_young_relations_invert(rho):
    w_opt = sor.omega_opt(rho)
    assert sor_rate(w_opt, rho) == pytest.approx(w_opt - 1, rel=1e-6)
    assert rho_star(w_opt) == pytest.approx(rho, rel=1e-9)
    for w in np.linspace(0.5, w_opt - 1e-3, 5):       # under-relaxed branch: exact inversion
        assert rho_from_rate(w, float(sor_rate(w, rho))) == pytest.approx(rho, rel=1e-9)
    assert np.allclose(sor_rate([w_opt + 0.01, 1.95], rho), [w_opt - 0.99, 0.95])   # over-relaxed: ω − 1
    assert sor_rate(1.0, rho) == pytest.approx(rho ** 2)                             # Gauss–Seidel: ρ_J²
    assert tail_rate([0.5 ** k for k in range(12)]) == pytest.approx(0.5)
    assert tail_rate([1.0, 0.5, 0.2]) is None


def test_observed_rate_of_real_sor_inverts_to_the_jacobi_radius():
    m, c = 16, 0.1
    A = laplacian_2d(m, shift=c)
    rho = 4 * math.cos(math.pi / (m + 1)) / (4 + c)
    b = np.random.default_rng(0).standard_normal(m * m)
    for w in (1.0, 1.5):                                   # ω* = 1.56: both under-relaxed
        out = sor.solve(A, b, omega=w, tol=1e-10)
        lam = tail_rate([out.extras["initial_residual"]] + [h["residual"] for h in out.history])
        assert lam == pytest.approx(float(sor_rate(w, rho)), rel=0.002)
        assert rho_from_rate(w, lam) == pytest.approx(rho, rel=0.002)


def _run(seq, **opts):
    solver = bandit.SequenceSolver(tuner="young", warm_start=False, **opts)
    total = sum(solver.solve(s.A, s.b, context=s.context).iterations for s in seq)
    return total, solver


# 7 s (a brute-force table of 40 systems x 20 omegas): under -m slow; the default run checks the Young tuner's
# learning on the gallery sequences (tests/test_sor_models.py: half of Gauss-Seidel's sweeps, omega > 1.2)
@pytest.mark.slow
def test_young_tuner_is_near_the_best_fixed_omega_and_concentrates_there():
    seq = shifted_laplacian_sequence(40, 16, shifts="uniform", low=0.0, high=0.5, seed=3)
    Ms = [sor.SORMatrix(s.A) for s in seq]
    C = np.array([[sor.solve(M, s.b, omega=w).iterations for w in GRID20] for M, s in zip(Ms, seq)])
    best = GRID20[int(np.argmin(C.sum(0)))]
    total, solver = _run(seq)
    # measured: best fixed 1.55 -> 1827 sweeps, Young 1952 (1.07x; at n = 256 counts are short and off Young's
    # asymptotics), Gauss–Seidel 5373
    assert total <= 1.15 * C.sum(0).min()
    late = np.array([r["omega"] for r in solver.rounds[-20:]])
    assert np.all(np.abs(late - best) <= 0.1)
    assert C[:, 0].sum() >= 2 * total


def test_contextual_young_beats_the_non_contextual_one():
    seq = shifted_laplacian_sequence(40, 24, shifts="uniform", low=0.0, high=0.5, seed=3)
    plain, _ = _run(seq)
    ctx, solver = _run(seq, context_range=(0.0, 0.5))
    # measured: 2622 vs 2237 sweeps; easy systems (large shift c) get a smaller ω, as ω*(c) says
    assert ctx < 0.9 * plain
    w = lambda c: solver.omegas[solver.tuner.select(c)]
    assert w(0.02) > w(0.45) + 0.1


def test_young_state_round_trips_through_json_and_capped_solves_extrapolate():
    seq = shifted_laplacian_sequence(20, 10, shifts="uniform", seed=1)
    s1 = bandit.SequenceSolver(tuner="young", warm_start=False, context_range=(0, 0.5))
    for s in seq[:10]:
        s1.solve(s.A, s.b, context=s.context)
    s2 = bandit.SequenceSolver.from_json(json.loads(json.dumps(s1.to_json())))
    a1 = [s1.solve(s.A, s.b, context=s.context).extras["omega"] for s in seq[10:]]
    a2 = [s2.solve(s.A, s.b, context=s.context).extras["omega"] for s in seq[10:]]
    assert a1 == a2 and s2.tuner.kind == "young" and len(s1.omegas) == 39
    # a capped solve: 20 sweeps at rate 0.9 from r_0 = 1 reach 0.9^20; the rest is extrapolated at that rate
    t = bandit.YoungTuner(3, omegas=[1.2, 1.5, 1.8])
    t.update(0, 20, residuals=[0.9 ** k for k in range(21)], tol=1e-8)
    assert t.model.obs[0][1] == pytest.approx(math.log(1e8) / -math.log(0.9), rel=1e-9)
    assert t.model.obs[0][2] == pytest.approx(rho_from_rate(1.2, 0.9))


def test_young_model_on_synthetic_young_costs_picks_the_best_fixed_omega():
    # systems with ρ in {0.9, 0.99}: costs exactly ln(1e8)/(−ln λ(ω, ρ)); the model sees the true rates. Exact
    # rates need no margin (the default 0.2 absorbs real transients just above ω*)
    grid = np.round(np.arange(1.0, 1.951, 0.025), 3)
    rhos = [0.9, 0.99] * 10
    model = YoungModel(grid, margin=0.0)
    cost = lambda j, r: math.log(1e8) / -math.log(float(sor_rate(grid[j], r)))
    for r in rhos:
        j = model.choose()
        model.observe(j, cost(j, r), float(sor_rate(grid[j], r)), math.log(1e8))
    true = [sum(cost(j, r) for r in rhos) for j in range(len(grid))]
    assert abs(model.choose() - int(np.argmin(true))) <= 1
