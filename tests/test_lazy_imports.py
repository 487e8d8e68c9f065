"""Heavy dependencies are imported on first use: a plain NLP solves without importing cvxpy, sympy or networkx,
and the stand-ins behave as the modules once used (from several threads at once too)."""
import subprocess
import sys
import textwrap

from optdsl.solvers.lazy import lazy_module

HEAVY = ("cvxpy", "sympy", "networkx")


def test_an_nlp_solves_without_importing_cvxpy_sympy_or_networkx():
    code = textwrap.dedent("""
        import sys
        import optdsl as od
        m = od.Model("nlp")
        x = m.variable(2, name="x", value=[0.5, 0.5])
        m.minimize(od.square(x[0] - 1) + od.square(x[1] - 2) + x[0] * x[1])
        m.subject_to(od.square(x[0]) + od.square(x[1]) <= 4, name="disk")
        r = m.solve()
        print(r.solver, r.status.name, round(r.objective, 6))
        print(",".join(sorted(n for n in %r if n in sys.modules)))
    """ % (HEAVY,))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split("\n")
    assert out[0].startswith("ipopt LOCALLY_OPTIMAL"), out
    assert out[1] == "", f"imported by a plain NLP solve: {out[1]}"


def test_the_stand_in_forwards_to_the_module_and_threads_meet_one_module():
    import cvxpy
    stand_in = lazy_module("cvxpy")
    assert stand_in is cvxpy                      # already imported: the module itself
    code = textwrap.dedent("""
        import sys, threading
        from optdsl.solvers.lazy import lazy_module
        cp = lazy_module("cvxpy")
        assert "cvxpy" not in sys.modules
        got = []
        def use():
            x = cp.Variable(2)
            got.append((cp.Problem(cp.Minimize(cp.sum_squares(x - 1))).solve(), type(x) is sys.modules["cvxpy"].Variable))
        threads = [threading.Thread(target=use) for _ in range(4)]
        [t.start() for t in threads]; [t.join() for t in threads]
        print(len(got), all(ok for _, ok in got), max(abs(v) for v, _ in got))
        print(cp.OPTIMAL, cp.constraints.Equality.__name__, hasattr(cp, "no_such_name"))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split("\n")
    n, ok, worst = out[0].split()
    assert (n, ok) == ("4", "True") and float(worst) < 1e-8
    assert out[1] == "optimal Equality False"
