"""Pictures of models and solves: the convergence plot behind ``Result.plot()`` / ``optdsl solve --plot`` and
the notebook displays (``_repr_html_``, ``_repr_latex_``) of ``Model`` and ``Result``.

The plot has three panels over the iteration count, read from ``Result.history``:

* objective f(x_k);
* constraint violation (the backend's own measure: max violation, feasibility, h(W), ...);
* stationarity (KKT residual, gradient norm, operator or fixed-point residual, ...).

Backends name their per-iteration measures differently, so each panel takes the first of a list of known
names that the history has (the legend says which). At the last iteration each panel also marks the
backend-independent certificate of the returned point (``max_violation``, ``kkt_stationarity``), so a
backend that records no history still gets a picture of where it ended. Figures are built on matplotlib's
Agg canvas without pyplot (no global state, no window, any notebook backend unaffected), in the style of
the DAG picture (``optdsl.dag.draw_graph_png``): 6-inch wide, tab colours, 100 dpi.
"""
from __future__ import annotations

import html
from typing import Any, Optional, Sequence

import numpy as np

# per-iteration names, most specific first
OBJECTIVE_KEYS = ("objective", "f")
VIOLATION_KEYS = ("max_violation", "violation", "feasibility", "infeasibility", "constraint_violation",
                  "primal_residual", "inf_pr", "h(W)", "h")
STATIONARITY_KEYS = ("kkt_stationarity", "stationarity", "kkt", "grad_norm", "dual_residual", "inf_du",
                     "operator_residual", "residual", "fixed_point_residual", "duality_gap", "gap")


def _series(history: Sequence[dict], keys: Sequence[str]) -> tuple[Optional[str], np.ndarray, np.ndarray]:
    """(name, iterations, values) of the first key in ``keys`` that some record holds as a finite number."""
    for key in keys:
        its, vals = [], []
        for k, rec in enumerate(history):
            v = rec.get(key)
            if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) and np.isfinite(v):
                its.append(rec.get("iteration", k))
                vals.append(float(v))
        if vals:
            return key, np.asarray(its, dtype=float), np.asarray(vals)
    return None, np.empty(0), np.empty(0)


def _scale(ax, values: np.ndarray) -> None:
    """Log scale for residuals that stay positive; symlog when some are exactly zero (a feasible iterate)."""
    positive = values[values > 0]
    if positive.size and positive.size == values.size:
        ax.set_yscale("log")
    elif positive.size:
        ax.set_yscale("symlog", linthresh=float(positive.min()))


def plot_result(res, path: Optional[str] = None, *, title: Optional[str] = None):
    """Objective, violation and stationarity per iteration of ``res``; returns the matplotlib ``Figure``.

    ``path``: also save it as a PNG, replaced atomically (a failed write keeps the previous file and raises
    ``FileWriteError`` naming the path).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    history = list(res.history or [])
    last = float(history[-1].get("iteration", len(history) - 1)) if history else float(max(res.iterations, 0))
    fig = Figure(figsize=(6, 6.5))
    FigureCanvasAgg(fig)
    axes = fig.subplots(3, 1, sharex=True)
    certs = res.certificates or {}
    panels = [
        ("objective", OBJECTIVE_KEYS, res.objective, "objective (returned)", "tab:blue"),
        ("violation", VIOLATION_KEYS, certs.get("max_violation"), "max_violation (certificate)", "tab:red"),
        ("stationarity", STATIONARITY_KEYS, certs.get("kkt_stationarity", certs.get("stationarity")),
         "stationarity (certificate)", "tab:green"),
    ]
    for ax, (label, keys, final, final_label, color) in zip(axes, panels):
        key, its, vals = _series(history, keys)
        shown = vals
        if key is not None:
            ax.plot(its, vals, color=color, marker="." if len(vals) < 60 else None, linewidth=1.5, label=key)
        final_ok = isinstance(final, (int, float, np.integer, np.floating)) and np.isfinite(final)
        if final_ok:
            ax.plot([last], [float(final)], linestyle="none", marker="*", markersize=12, color="black",
                    label=final_label)
            shown = np.append(vals, float(final))
        if label != "objective" and shown.size:
            _scale(ax, shown)
        if key is None and not final_ok:
            ax.text(0.5, 0.5, f"no {label} recorded by {res.solver or 'the backend'}", transform=ax.transAxes,
                    ha="center", va="center", color="gray")
        ax.set_ylabel(label)
        ax.grid(True, alpha=0.3)
        if key is not None or final_ok:
            ax.legend(loc="best", fontsize=8)
    axes[-1].set_xlabel("iteration")
    status = getattr(res.status, "value", res.status)
    axes[0].set_title(title or f"{res.solver or 'solve'}: {status}, {res.iterations} iterations")
    fig.tight_layout()
    if path is not None:
        from .solvers.io import atomic_write
        atomic_write(path, lambda fh: fig.savefig(fh, format="png", dpi=100))
    return fig


# --- notebook displays ---------------------------------------------------------------------------------------

def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, (float, np.floating)):
        return f"{float(v):.6g}"
    return str(v)


def _array(a: Any, limit: int = 8) -> str:
    a = np.asarray(a)
    if a.ndim == 0:
        return _fmt(float(a))
    flat = ", ".join(f"{x:.6g}" for x in a.ravel()[:limit])
    return f"[{flat}{', ...' if a.size > limit else ''}]"


def _table(title: str, rows: Sequence[Sequence[str]]) -> str:
    body = "".join("<tr>" + "".join(f"<td style='text-align:left'>{html.escape(c)}</td>" for c in r) + "</tr>"
                   for r in rows)
    return f"<details open><summary><b>{html.escape(title)}</b></summary><table>{body}</table></details>"


def result_html(res, limit: int = 20) -> str:
    """A notebook view of a Result: status line, then variables, duals and certificates (``limit`` rows each)."""
    ok = res.status.is_success
    color = "green" if ok else "#b00"
    status = getattr(res.status, "value", res.status)
    primal = getattr(res.primal_status, "value", res.primal_status)
    head = (f"<div><b style='color:{color}'>{html.escape(str(status))}</b> &nbsp; primal: {html.escape(str(primal))}"
            f" &nbsp; objective: <b>{html.escape(_fmt(res.objective))}</b><br>chain: "
            f"{html.escape(' → '.join(res.chain) or res.solver or '-')} &nbsp; iterations: {res.iterations}"
            f" &nbsp; solve {res.times.get('solve', 0):.3g} s</div>")
    parts = [head]
    if res.message:
        parts.append(f"<div>message: {html.escape(res.message)}</div>")
    for title, items in (("variables", res.values), ("duals", res.duals)):
        if items:
            rows = [(k, str(np.shape(v)), _array(v)) for k, v in list(items.items())[:limit]]
            parts.append(_table(f"{title} ({len(items)})", rows))
    if res.certificates:
        parts.append(_table("certificates", [(k, _fmt(v)) for k, v in list(res.certificates.items())[:limit]]))
    return "".join(parts)


def result_latex(res) -> str:
    """``$f^\\star = ...$`` with the status, for notebooks that render LaTeX."""
    status = str(getattr(res.status, "value", res.status)).replace("_", r"\_")
    obj = "-" if res.objective is None else f"{res.objective:.8g}"
    solver = (res.solver or "").replace("_", r"\_")
    return rf"$f^\star = {obj}\quad \text{{({status}, {solver}, {res.iterations} iterations)}}$"


def model_html(model) -> str:
    """A notebook view of a Model: its text form (variables, objective, named constraints)."""
    return f"<pre>{html.escape(str(model))}</pre>"


def model_latex(model) -> str:
    return "$$" + model.to_latex() + "$$"
