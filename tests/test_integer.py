"""Integer and boolean variables: mixed-integer LPs through cvxpy + HiGHS (backend ``mip``), checked by
brute-force enumeration; every other backend refuses them by name in explain()."""
import itertools

import numpy as np
import pytest

import optdsl as od
from optdsl.backends import BACKENDS


def _knapsack(values, weights, cap):
    m = od.Model("knap")
    x = m.variable(len(values), boolean=True, name="x")
    m.maximize(values @ x)
    m.subject_to(weights @ x <= cap, name="cap")
    return m, x


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_knapsack_matches_enumeration(seed):
    rng = np.random.default_rng(seed)
    v, w = rng.integers(1, 30, 10).astype(float), rng.integers(1, 15, 10).astype(float)
    cap = float(np.floor(w.sum() / 2.5))
    m, x = _knapsack(v, w, cap)
    res = m.solve()
    subsets = np.array(list(itertools.product((0.0, 1.0), repeat=10)))
    best = np.max(np.where(subsets @ w <= cap, subsets @ v, -np.inf))
    assert res.status.name == "OPTIMAL" and res.solver == "mip"
    assert res.objective == pytest.approx(best, abs=1e-9)
    assert set(np.unique(x.value)) <= {0.0, 1.0} and w @ x.value <= cap
    # the bound certifies the incumbent: maximize, so the bound is >= the value, within the gap
    assert res.certificates["mip_bound"] >= res.objective - 1e-9
    assert res.certificates["mip_gap"] <= 1e-6 and res.certificates["integrality_violation"] <= 1e-6


def test_general_integers_with_negative_bounds_match_enumeration():
    rng = np.random.default_rng(3)
    A, b, c = rng.normal(size=(4, 3)), rng.uniform(1, 3, 4), rng.normal(size=3)
    m = od.Model("ilp")
    z = m.variable(3, integer=True, lb=-3, ub=3, name="z")
    m.minimize(c @ z)
    m.subject_to(A @ z <= b, name="rows")
    res = m.solve()
    grid = np.array(list(itertools.product(range(-3, 4), repeat=3)), dtype=float)
    feas = np.all(grid @ A.T <= b + 1e-12, axis=1)
    assert res.objective == pytest.approx(float(np.min(grid[feas] @ c)), abs=1e-9)
    assert np.allclose(z.value, np.round(z.value))


def test_integer_rounding_differs_from_the_lp_relaxation():
    # max x1 + x2 s.t. 2x1 + 2x2 <= 3: the LP gives 1.5, integers give 1
    m = od.Model("gap")
    x = m.variable(2, integer=True, lb=0, name="x")
    m.maximize(x.sum())
    m.subject_to(2 * x.sum() <= 3, name="c")
    assert m.solve().objective == pytest.approx(1.0)


def test_boolean_bounds_and_errors():
    m = od.Model("b")
    x = m.variable(2, boolean=True, name="x")
    assert x.integer and x.boolean and np.all(x.lb == 0) and np.all(x.ub == 1)
    with pytest.raises(od.ModelError, match="boolean variable 'y'"):
        m.variable(2, boolean=True, ub=2, name="y")


def test_every_other_backend_says_it_cannot_handle_integer():
    m, _ = _knapsack(np.array([1.0, 2.0]), np.array([1.0, 1.0]), 1.0)
    text = m.explain()
    assert "-> mip" in text.splitlines()[1]
    for name in BACKENDS:
        if name == "mip":
            continue
        line = next(ln for ln in text.splitlines() if ln.strip().startswith(f"not {name}:"))
        assert "cannot handle" in line and "integer" in line or "only" in line, line
    for name in ("cvxpy", "nlp", "lbfgs", "zo", "alsketch"):
        assert "cannot handle" in text.split(f"not {name}:")[1].splitlines()[0]
        assert "integer" in text.split(f"not {name}:")[1].splitlines()[0]


def test_mixed_integer_qp_is_refused_with_the_reason():
    m = od.Model("miqp")
    z = m.variable(3, integer=True, lb=0, ub=5, name="z")
    m.minimize(od.sum_squares(z - np.array([0.3, 1.6, 2.5])))
    from optdsl.backends.mip_backend import miqp_solver
    if miqp_solver() is not None:
        pytest.skip("a MIQP solver is installed here")
    with pytest.raises(od.NotSolvableError, match="needs a MIQP solver"):
        m.solve()


def test_robust_counterpart_keeps_integers():
    # max Σx s.t. (a + u)ᵀx <= b for all |u|_inf <= r, x integer in [0, 4]: counterpart aᵀx + r·Σx <= b
    a, r, b = np.array([1.0, 1.5, 2.0]), 0.5, 7.0
    m = od.Model("robust_int")
    x = m.variable(3, integer=True, lb=0, ub=4, name="x")
    u = m.uncertain(3, within=od.Box(np.zeros(3), radius=r), name="u")
    m.maximize(np.array([1.0, 2.0, 3.0]) @ x)
    m.subject_to((a + u) @ x <= b, name="cap")
    res = m.solve()
    assert res.chain[-1] == "mip" and "robust_to_counterpart" in res.chain
    grid = np.array(list(itertools.product(range(5), repeat=3)), dtype=float)
    feas = grid @ a + r * grid.sum(axis=1) <= b + 1e-12
    assert res.objective == pytest.approx(float(np.max(grid[feas] @ np.array([1.0, 2.0, 3.0]))))
    assert np.allclose(x.value, np.round(x.value))


def test_result_json_keeps_gap_and_bound():
    m, _ = _knapsack(np.array([3.0, 4.0, 5.0]), np.array([2.0, 3.0, 4.0]), 5.0)
    res = m.solve()
    back = od.Result.from_json(res.to_json())
    assert back.certificates["mip_bound"] == pytest.approx(res.certificates["mip_bound"]) and back.objective == 7.0


def test_ccg_keeps_integer_first_stage_variables():
    # Zeng & Zhao (2013) location-transportation with binary opening decisions: the paper's optimum 33680
    import importlib.util
    from pathlib import Path
    path = Path(__file__).resolve().parent.parent / "problems" / "robust_two_stage_location.py"
    spec = importlib.util.spec_from_file_location("robust_two_stage_location", path)
    g = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(g)
    m = od.Model("location_binary")
    z = m.variable(3, boolean=True, name="open")
    cap = m.variable(3, lb=0, ub=800, name="cap")
    y = m.recourse((3, 3), lb=0, name="ship")
    u = m.uncertain(3, within=g.PROB.uset, name="u")
    m.minimize(g.F @ z + g.A_CAP @ cap + (g.C * y).sum())
    m.subject_to(cap <= 800 * z, name="open_cap")
    m.subject_to(cap.sum() >= 772, name="total")
    m.subject_to(y.sum(axis=1) <= cap, name="supply")
    m.subject_to(y.sum(axis=0) >= g.DBAR + g.G * u, name="demand")
    res = m.solve()
    assert res.solver == "robust_ccg" and res.status.name == "OPTIMAL"
    assert res.objective == pytest.approx(g.OPT_INTEGER, rel=1e-6) and set(np.unique(z.value)) <= {0.0, 1.0}


def test_highs_banner_stays_off_stdout():
    # HiGHS writes its banner on the process's stdout at first use; stdout carries results (and JSON)
    import subprocess
    import sys
    code = ("import optdsl as od\n"
            "m = od.Model('k'); x = m.variable(3, name='x', boolean=True)\n"
            "m.maximize(x[0] + 2 * x[1] + 3 * x[2]); m.subject_to(x[0] + x[1] + x[2] <= 2, name='cap')\n"
            "print(m.solve().objective)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["5.0"], out.stdout
