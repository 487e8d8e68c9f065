"""``alsketch``: exact augmented Lagrangian whose Newton–KKT systems are solved by randomized iterative
sketching (Hong, Na, Mahoney & Kolar). The research path (GPU, sketching) for smooth constrained models,
chosen by name or where ``ipopt`` cannot take the model (od.fn terms); cheaper in dispatch than ``nlp``."""
from __future__ import annotations

from ..errors import ModelError
from ..solvers import alsketch
from .flatten import NotStructured
from .base import Option
from .nlp_backend import _COMMON, _DERIVATIVES, _Smooth


class AlsketchBackend(_Smooth):
    name = "alsketch"
    description = "exact augmented Lagrangian + randomized sketching for Newton-KKT systems (smooth NLP)"
    supports = frozenset({"bounds", "equality", "inequality", "opaque"})
    cost = 2.0
    certificates = ("stationarity", "feasibility", "complementarity", "kkt")
    options = {
        **_COMMON,
        "hessian": Option(str, "exact", "Hessian of the Lagrangian", ("exact", "bfgs")),
        "linear_solver": Option(str, "auto", "Newton-KKT solver: randomized sketching, a direct factorization, or "
                                "auto (direct when n + m <= sketch_threshold, sketching above)",
                                ("auto", "sketch", "direct")),
        "sketch_threshold": Option(int, 5000, "linear_solver='auto': KKT size (n + m) from which sketching is used"),
        "sketch": Option(str, "rows", "sketch family: block Kaczmarz rows or Gaussian", ("rows", "gaussian")),
        "sketch_size": Option(int, None, "sketch block size (default from the system size)"),
        "seed": Option(int, 0, "random seed of the sketches"),
        "structured": Option(str, "auto", "sparse mode: constant sparse constraint Jacobians and a sparse objective "
                             "Hessian built from the model (affine constraints, objective separable in affine "
                             "maps); auto uses it when n + m > sketch_threshold and the model has that form",
                             ("auto", "on", "off")),
        "accuracy": Option(str, "adaptive", "inexactness test of the sketched Newton step: adaptive (forcing term, "
                           "descent checked after the step) or paper (the reference's worst-case psi/Upsilon bound)",
                           ("adaptive", "paper")),
        "sketch_grow": Option(bool, True, "double the sketch block size when the sketch iteration stalls"),
        "max_sketch_size": Option(int, None, "largest sketch block when growing (default: system size - 1 in "
                                  "dense mode, 2048 rows in sparse mode)"),
        "barrier_hessian": Option(str, "primal-dual", "barrier block of the Newton matrix for inequalities and "
                                  "bounds: primal-dual Z/D (dual estimates kept across iterations) or the primal "
                                  "barrier's mu/D^2", ("primal-dual", "primal")),
        "derivatives": _DERIVATIVES,
    }

    def run(self, flat, options, callback, convex, f, scale, x0=None):
        start = flat.x0() if x0 is None else x0
        lb, ub = flat.bounds()
        solver = options["linear_solver"]
        m = sum(c.expr.size for c in flat.eq_items + flat.in_items)
        common = dict(
            eq=flat.eq if flat.eq_items else None, ineq=flat.ineq if flat.in_items else None, lb=lb, ub=ub,
            sketch=options["sketch"], sketch_size=options["sketch_size"], accuracy=options["accuracy"],
            sketch_grow=options["sketch_grow"], max_sketch_size=options["max_sketch_size"],
            max_iter=options["max_iter"], tol=max(options["tol"], 1e-10), time_limit=options["time_limit"],
            callback=callback, device=flat.device, dtype=flat.dtype, seed=options["seed"],
            barrier_hessian=options["barrier_hessian"])
        sparse = self._sparse_derivatives(flat, options, flat.n + m)
        if sparse is not None:
            # sparse KKT matrices: a sparse factorization (Schur complement when H is diagonal) is the
            # reliable choice; sketching only on request (on a Poisson KKT system at n = 1e4 no sketched
            # Newton step finished in 120 s: docs/backends/alsketch.md)
            hess = sparse["hess_lag"]
            return alsketch.minimize(
                f, start, linear_solver="direct" if solver == "auto" else solver,
                jac_eq=(lambda x: sparse["jac_eq"]) if flat.eq_items else None,
                jac_ineq=(lambda x: sparse["jac_ineq"]) if flat.in_items else None,
                hess_lag=hess if scale == 1.0 else (lambda x, lam: scale * hess(x, lam)), **common)
        if solver == "auto":
            # below a few thousand unknowns a dense factorization costs less than sketching (the sketch path
            # also solves all 24 HS problems, at about twice the time); large ones are what sketching is for
            solver = "direct" if flat.n + m <= options["sketch_threshold"] else "sketch"
        return alsketch.minimize(f, start, hessian=options["hessian"], linear_solver=solver,
                                 derivatives=self._compiled_derivatives(flat, options, scale), **common)

    @staticmethod
    def _sparse_derivatives(flat, options, size):
        mode = options["structured"]
        if mode == "off" or (mode == "auto" and size <= options["sketch_threshold"]):
            return None
        if options["hessian"] != "exact":
            why = "the sparse mode uses the exact sparse Hessian (hessian='bfgs' keeps the dense path)"
        else:
            try:
                return flat.sparse_derivatives()
            except NotStructured as err:
                why = str(err)
        if mode == "on":
            raise ModelError(f"alsketch structured='on': {why}")
        return None


BACKENDS = [AlsketchBackend()]
