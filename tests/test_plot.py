"""Pictures: Result.plot() / `optdsl solve --plot` write real PNGs; notebook displays of Model and Result."""
import os

import matplotlib.image as mpimg
import numpy as np
import pytest

import optdsl as od
from optdsl.cli import main
from optdsl.plotting import STATIONARITY_KEYS, VIOLATION_KEYS, _series


def _hs71():
    m = od.Model("hs71")
    x = m.variable(4, lb=1, ub=5, name="x", value=[1, 5, 5, 1])
    m.minimize(x[0] * x[3] * (x[0] + x[1] + x[2]) + x[2])
    m.subject_to(od.sum_squares(x) == 40, name="sphere")
    m.subject_to(x[0] * x[1] * x[2] * x[3] >= 25, name="product")
    return m


def _png_has_content(path, min_bytes=10_000):
    """A PNG of real size whose pixels are not one colour, with coloured (curve) pixels in it."""
    assert os.path.getsize(path) > min_bytes
    img = mpimg.imread(path)[..., :3]
    assert img.shape[0] >= 400 and img.shape[1] >= 400
    assert img.reshape(-1, 3).std(axis=0).max() > 0.05          # not a blank canvas
    saturation = img.max(axis=2) - img.min(axis=2)
    return int((saturation > 0.3).sum())                          # pixels in colour: curves and markers


@pytest.fixture(scope="module")
def alsketch_result():
    return _hs71().solve(solver="alsketch")   # 36 iterations of objective and KKT residual


def test_plot_draws_each_recorded_series(alsketch_result, tmp_path):
    res = alsketch_result
    assert res.status.is_success and len(res.history) > 10
    path = tmp_path / "conv.png"
    fig = res.plot(path=str(path))
    assert _png_has_content(path) > 200
    top, mid, bottom = fig.axes
    # the objective panel carries the recorded objective per iteration, ending at the returned objective
    (line, *_) = top.get_lines()
    ys = line.get_ydata()
    assert len(ys) == len(res.history)
    assert ys[-1] == pytest.approx(res.objective, rel=1e-6)
    # the stationarity panel shows alsketch's KKT residual, falling by orders of magnitude, on a log axis
    key, _, vals = _series(res.history, STATIONARITY_KEYS)
    assert key == "kkt" and vals[0] / vals[-1] > 1e6
    assert bottom.get_yscale() == "log"
    assert np.allclose(bottom.get_lines()[0].get_ydata(), vals)
    # the certificate at the returned point is marked at the last iteration
    star = [l for l in mid.get_lines() if l.get_marker() == "*"]
    assert star and star[0].get_ydata()[0] == pytest.approx(res.certificates["max_violation"])


def test_plot_without_history_still_shows_the_end_point(tmp_path):
    m = od.Model("qp")
    x = m.variable(3, name="x")
    m.minimize(od.sum_squares(x - np.array([1.0, 2.0, 3.0])))
    res = m.solve(solver="cvxpy")                 # cvxpy records no per-iteration history
    assert res.history == []
    path = tmp_path / "end.png"
    fig = res.plot(path=str(path))
    _png_has_content(path, min_bytes=5_000)
    stars = [l for ax in fig.axes for l in ax.get_lines() if l.get_marker() == "*"]
    assert stars and stars[0].get_ydata()[0] == pytest.approx(res.objective, abs=1e-8)


def test_series_picks_the_first_known_name_and_skips_non_finite():
    hist = [{"iteration": 0, "feasibility": 1.0, "kkt": float("nan")},
            {"iteration": 1, "feasibility": 0.1, "kkt": 2.0},
            {"iteration": 2, "max_violation": 0.01, "feasibility": 0.01}]
    key, its, vals = _series(hist, VIOLATION_KEYS)
    assert key == "max_violation" and list(its) == [2] and list(vals) == [0.01]
    key, its, vals = _series(hist, STATIONARITY_KEYS)
    assert key == "kkt" and list(its) == [1] and list(vals) == [2.0]


def test_plot_write_is_atomic_and_names_the_path(alsketch_result, tmp_path):
    from optdsl.solvers.io import FileWriteError
    with pytest.raises(FileWriteError, match="no_such_folder"):
        alsketch_result.plot(path=str(tmp_path / "no_such_folder" / "x.png"))
    assert not list(tmp_path.iterdir())


def test_cli_solve_plot_writes_png(tmp_path, capsys):
    script = tmp_path / "model.py"
    script.write_text("import optdsl as od\nmodel = od.Model('ls')\nx = model.variable(3, name='x')\n"
                      "model.minimize(od.sum_squares(x - 2) + od.sum_squares(x[0] - x[1]))\n")
    png = tmp_path / "conv.png"
    assert main(["solve", str(script), "--solver", "lbfgs", "--plot", str(png), "-q"]) == 0
    assert "OPTIMAL" in capsys.readouterr().out
    _png_has_content(png, min_bytes=5_000)


def test_notebook_displays(alsketch_result):
    m = _hs71()
    html = m._repr_html_()
    assert "sphere" in html and "product" in html and html.startswith("<pre>")
    latex = m._repr_latex_()
    assert latex.startswith("$$\\begin{array}") and "\\text{sphere}" in latex
    res = alsketch_result
    page = res._repr_html_()
    assert "LOCALLY_OPTIMAL" in page and "sphere" in page and f"{res.objective:.6g}" in page
    assert "<script" not in page
    assert "LOCALLY\\_OPTIMAL" in res._repr_latex_()


def test_html_escapes_user_names():
    m = od.Model("esc")
    x = m.variable(2, name="<b>x</b>")
    m.minimize(od.sum_squares(x))
    assert "<b>x</b>" not in m._repr_html_() and "&lt;b&gt;x&lt;/b&gt;" in m._repr_html_()
    res = m.solve(solver="lbfgs")
    assert "<b>x</b>" not in res._repr_html_()
