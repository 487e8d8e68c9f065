"""Heavy dependencies are imported on first use: a plain NLP solves without importing cvxpy, sympy or networkx,
and the stand-ins then behave as the modules (first touched from several threads at once, too). One fresh
interpreter for both (its start, importing torch, is most of this test's time)."""
import subprocess
import sys
import textwrap

from optdsl.solvers.lazy import lazy_module

HEAVY = ("cvxpy", "sympy", "networkx")

SCRIPT = textwrap.dedent("""
    import sys, threading
    import optdsl as od
    m = od.Model("nlp")
    x = m.variable(2, name="x", value=[0.5, 0.5])
    m.minimize(od.square(x[0] - 1) + od.square(x[1] - 2) + x[0] * x[1])
    m.subject_to(od.square(x[0]) + od.square(x[1]) <= 4, name="disk")
    r = m.solve()
    print(r.solver, r.status.name)
    print(",".join(sorted(n for n in %r if n in sys.modules)))

    from optdsl.backends.cvxpy_backend import cp
    got = []
    def use():
        y = cp.Variable(2)
        got.append((cp.Problem(cp.Minimize(cp.sum_squares(y - 1))).solve(), type(y) is sys.modules["cvxpy"].Variable))
    threads = [threading.Thread(target=use) for _ in range(4)]
    [t.start() for t in threads]; [t.join() for t in threads]
    print(len(got), all(ok for _, ok in got), max(abs(v) for v, _ in got))
    print(cp.OPTIMAL, cp.constraints.Equality.__name__, hasattr(cp, "no_such_name"))
""" % (HEAVY,))


def test_an_nlp_solves_without_the_heavy_imports_and_the_stand_ins_then_work_from_threads():
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True).stdout.split("\n")
    assert out[0] == "ipopt LOCALLY_OPTIMAL", out
    assert out[1] == "", f"imported by a plain NLP solve: {out[1]}"
    n, ok, worst = out[2].split()
    assert (n, ok) == ("4", "True") and float(worst) < 1e-8
    assert out[3] == "optimal Equality False"


def test_an_imported_module_is_returned_as_itself():
    import cvxpy
    assert lazy_module("cvxpy") is cvxpy
