"""Per-atom checks of the CVXPY atom set: value (torch) against cvxpy's own atom, a directional derivative
(torch autograd) against central differences of cvxpy's value, the sympy form's value, and the DCP
curvature of our cvxpy lowering against the atom written in cvxpy directly."""
import cvxpy as cp
import numpy as np
import pytest
import sympy as sp
import torch

import optdsl as od
from optdsl.lower.cvxpy import CvxpyLowering
from optdsl.lower.sympy import elementwise
from optdsl.lower.torch import TorchLowering

RNG = np.random.default_rng(17)
V3 = np.array([0.7, -1.3, 2.1])
POS3 = np.array([0.4, 1.7, 0.9])
POS3B = np.array([1.1, 0.3, 2.2])
M23 = np.array([[1.0, -2.0, 0.5], [0.3, 0.8, -1.5]])
_B = np.array([[2.0, 0.3, -0.4], [0.3, 1.5, 0.2], [-0.4, 0.2, 1.2]])
SPD = _B @ _B.T + 0.5 * np.eye(3)
SYM2 = np.array([[1.0, 0.4], [0.4, -0.3]])

# name: (od builder, cvxpy builder, input values, symmetric-matrix args (perturbed symmetrically))
CASES = {
    "huber": (lambda x: od.huber(x, 1.5), lambda x: cp.huber(x, 1.5), [V3 * 1.2], ()),
    "entr": (od.entr, cp.entr, [POS3], ()),
    "logistic": (od.logistic, cp.logistic, [V3], ()),
    "log1p_exp": (lambda x: od.log(1 + od.exp(x)), cp.logistic, [V3], ()),
    "inv_pos": (od.inv_pos, cp.inv_pos, [POS3], ()),
    "kl_div": (od.kl_div, cp.kl_div, [POS3, POS3B], ()),
    "rel_entr": (od.rel_entr, cp.rel_entr, [POS3, POS3B], ()),
    "log_det": (od.log_det, cp.log_det, [SPD], (0,)),
    "trace": (od.trace, cp.trace, [SPD], ()),
    "diag_vec": (od.diag, cp.diag, [V3], ()),
    "diag_mat": (od.diag, cp.diag, [SPD], ()),
    "diff": (od.diff, cp.diff, [V3], ()),
    "diff_k2_axis1": (lambda x: od.diff(x, 2, axis=1), lambda x: cp.diff(x, 2, axis=1), [M23], ()),
    "cumsum": (od.cumsum, cp.cumsum, [V3], ()),
    "cumsum_axis1": (lambda x: od.cumsum(x, axis=1), lambda x: cp.cumsum(x, axis=1), [M23], ()),
    "multiply": (od.multiply, cp.multiply, [V3, POS3], ()),
    "pnorm3": (lambda x: od.pnorm(x, 3), lambda x: cp.pnorm(x, 3), [V3], ()),
    "pnorm_half": (lambda x: od.pnorm(x, 0.5), lambda x: cp.pnorm(x, 0.5), [POS3], ()),
    "geo_mean": (od.geo_mean, cp.geo_mean, [POS3], ()),
    "geo_mean_w": (lambda x: od.geo_mean(x, [1, 2, 1]), lambda x: cp.geo_mean(x, [1, 2, 1]), [POS3], ()),
    "quad_over_lin": (od.quad_over_lin, cp.quad_over_lin, [V3, np.array(1.7)], ()),
    "lambda_max": (od.lambda_max, cp.lambda_max, [SYM2], (0,)),
    "matrix_frac": (od.matrix_frac, cp.matrix_frac, [V3, SPD], (1,)),
    "matrix_frac_mat": (od.matrix_frac, cp.matrix_frac, [M23.T, SPD], (1,)),
    "norm2_axis1": (lambda x: od.norm(x, axis=1), lambda x: cp.norm(x, 2, axis=1), [M23], ()),
    "norm1_axis0": (lambda x: od.norm(x, 1, axis=0), lambda x: cp.norm(x, 1, axis=0), [M23], ()),
    "norminf_axis1": (lambda x: od.norm_inf(x, axis=1), lambda x: cp.norm(x, "inf", axis=1), [M23], ()),
    "sum_axis0": (lambda x: od.sum(x, axis=0), lambda x: cp.sum(x, axis=0), [M23], ()),
}


def _model(values):
    m = od.Model("atom")
    xs = [m.variable(np.shape(v), name=f"a{i}", value=v) for i, v in enumerate(values)]
    return m, xs


def _direction(values, sym):
    ds = []
    for i, v in enumerate(values):
        d = RNG.standard_normal(np.shape(v))
        ds.append((d + d.T) / 2 if i in sym else d)
    return ds


def _cvxpy_value(cp_fn, values):
    return np.asarray(cp_fn(*[cp.Constant(v) for v in values]).value, dtype=float)


@pytest.mark.parametrize("name", sorted(CASES))
def test_value_and_gradient_match_cvxpy(name):
    od_fn, cp_fn, values, sym = CASES[name]
    _, xs = _model(values)
    e = od_fn(*xs)
    assert e.shape == _cvxpy_value(cp_fn, values).shape
    np.testing.assert_allclose(e.value, _cvxpy_value(cp_fn, values), rtol=1e-6, atol=1e-9)

    # directional derivative of a random scalarisation  w . f(x)  along d: autograd vs central differences
    w = RNG.standard_normal(e.shape)
    ds = _direction(values, sym)
    env = {x: torch.tensor(v, dtype=torch.float64, requires_grad=True) for x, v in zip(xs, values)}
    out = (torch.as_tensor(w) * TorchLowering().evaluate(e, env)).sum()
    grads = torch.autograd.grad(out, list(env.values()))
    auto = sum(float((g.numpy() * d).sum()) for g, d in zip(grads, ds))
    h = 1e-6

    def f(t):
        return float(np.sum(w * _cvxpy_value(cp_fn, [v + t * d for v, d in zip(values, ds)])))

    fd = (f(h) - f(-h)) / (2 * h)
    assert auto == pytest.approx(fd, rel=1e-5, abs=1e-6)


@pytest.mark.parametrize("name", sorted(CASES))
def test_curvature_matches_cvxpy(name):
    od_fn, cp_fn, values, _ = CASES[name]
    _, xs = _model(values)
    low = CvxpyLowering()
    ours = low.lower(od_fn(*xs))
    theirs = cp_fn(*[cp.Variable(np.shape(v)) for v in values])
    assert ours.curvature == theirs.curvature
    assert ours.sign == theirs.sign


@pytest.mark.parametrize("name", sorted(set(CASES) - {"lambda_max"}))
def test_sympy_form_agrees(name):
    od_fn, cp_fn, values, _ = CASES[name]
    _, xs = _model(values)
    e = od_fn(*xs)
    syms: dict = {}
    form = np.asarray(elementwise(e, syms), dtype=object)
    subs = {}
    for x, v in zip(xs, values):
        for s_, val in zip(np.ravel(syms[x]), np.ravel(v)):
            subs[s_] = val
    got = np.vectorize(lambda t: float(sp.N(sp.sympify(t).subs(subs))), otypes=[float])(form)
    np.testing.assert_allclose(got, np.asarray(e.value), rtol=1e-8, atol=1e-10)


def test_lambda_max_sympy_on_2x2():
    m, (X,) = _model([SYM2])
    syms: dict = {}
    form = elementwise(od.lambda_max(X), syms)
    subs = dict(zip(np.ravel(syms[X]), np.ravel(SYM2)))
    assert float(sp.N(form.subs(subs))) == pytest.approx(np.linalg.eigvalsh(SYM2)[-1], rel=1e-10)


def test_log_of_one_plus_exp_is_logistic_and_convex():
    m = od.Model()
    z = m.variable(3, name="z")
    e = od.log(1 + od.exp(z))
    assert isinstance(e, od.Expr) and e.name == "logistic"
    assert od.log(od.exp(z) + 1).name == "logistic"
    assert od.log(2 + od.exp(z)).name == "log"  # only the constant 1 is softplus
    m.minimize(od.sum(od.log(1 + od.exp(z))) + od.sum_squares(z - 1))
    assert "convex" in m.tags()
    res = m.solve()
    # optimality: sigmoid(z) + 2 (z - 1) = 0 in every coordinate
    z_ = res.values["z"]
    assert np.max(np.abs(1 / (1 + np.exp(-z_)) + 2 * (z_ - 1))) < 1e-5


def test_axis_norm_in_a_solved_model_matches_cvxpy():
    A = RNG.standard_normal((4, 3))
    m = od.Model()
    X = m.variable((4, 3), name="X")
    m.minimize(od.sum(od.norm(X - A, axis=1)) + 0.3 * od.sum_squares(X))
    res = m.solve()
    Xc = cp.Variable((4, 3))
    ref = cp.Problem(cp.Minimize(cp.sum(cp.norm(Xc - A, 2, axis=1)) + 0.3 * cp.sum_squares(Xc)))
    ref.solve()
    assert res.solver == "cvxpy"
    assert res.objective == pytest.approx(ref.value, rel=1e-6)


@pytest.mark.parametrize("build, message", [
    (lambda x, X: od.trace(x), "square matrix"),
    (lambda x, X: od.log_det(X[:2]), "square matrix"),
    (lambda x, X: od.diff(x, 3), "0 <= k < 3"),
    (lambda x, X: od.quad_over_lin(x, x), "scalar y"),
    (lambda x, X: od.geo_mean(x, [1, -1, 1]), "non-negative"),
    (lambda x, X: od.pnorm(x, 0), "nonzero"),
    (lambda x, X: od.matrix_frac(x[:2], X), "with 3 rows"),
    (lambda x, X: od.norm(X, axis=2), "axis 2 is out of range"),
    (lambda x, X: od.huber(x, -1), "non-negative"),
])
def test_bad_atom_arguments_name_the_problem(build, message):
    m = od.Model()
    x, X = m.variable(3, name="x"), m.variable((3, 3), name="X")
    with pytest.raises(od.ShapeError, match=message):
        build(x, X)


@pytest.mark.parametrize("name", sorted(set(CASES) - {"lambda_max"}))
def test_casadi_lowering_value_and_gradient(name):
    ca = pytest.importorskip("casadi")
    from optdsl.lower.casadi import CasadiLowering
    od_fn, _, values, _ = CASES[name]
    _, xs = _model(values)
    e = od_fn(*xs)
    sizes = [x.size for x in xs]
    offsets = list(np.cumsum([0] + sizes[:-1]))
    low = CasadiLowering(xs, offsets, int(sum(sizes)))
    out = low.lower(e)
    w = RNG.standard_normal(e.shape)
    flat_w = ca.DM(np.asarray(w, float).reshape(-1, 1) if e.shape else np.asarray([[float(w)]]))
    # CasADi arrays are 2-D: () is 1x1, (n,) is n x 1, (m, n) is m x n
    val = np.asarray(ca.Function("f", [low.x], [out])(np.concatenate([np.ravel(v) for v in values]))).reshape(e.shape)
    np.testing.assert_allclose(val, e.value, rtol=1e-10, atol=1e-12)
    rowmajor = out.T.reshape((-1, 1)) if len(e.shape) == 2 else out
    g = ca.Function("g", [low.x], [ca.gradient(ca.dot(flat_w, rowmajor), low.x)])
    grad = np.asarray(g(np.concatenate([np.ravel(v) for v in values]))).ravel()
    env = {x: torch.tensor(v, dtype=torch.float64, requires_grad=True) for x, v in zip(xs, values)}
    ref = torch.autograd.grad((torch.as_tensor(w) * TorchLowering().evaluate(e, env)).sum(), list(env.values()))
    np.testing.assert_allclose(grad, np.concatenate([r.numpy().ravel() for r in ref]), rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("name", ["trace", "diag_vec", "diag_mat", "diff", "diff_k2_axis1", "cumsum", "cumsum_axis1",
                                  "multiply", "sum_axis0"])
def test_sparse_affine_rows_of_linear_atoms(name):
    from optdsl.lower.sparse_affine import SparseAffineLowering
    od_fn, _, values, _ = CASES[name]
    _, xs = _model(values)
    if name == "multiply":
        xs[1] = values[1]  # affine only with one constant factor
    e = od_fn(*xs)
    var = [x for x in xs if isinstance(x, od.Variable)]
    sizes = [x.size for x in var]
    aff = SparseAffineLowering(var, list(np.cumsum([0] + sizes[:-1])), int(sum(sizes))).lower(e)
    z = np.concatenate([np.ravel(v) for v, x in zip(values, xs) if isinstance(x, od.Variable)])
    np.testing.assert_allclose((aff.A @ z + aff.b.reshape(-1)).reshape(e.shape), e.value, rtol=1e-12, atol=1e-12)
