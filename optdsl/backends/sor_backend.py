"""``sor``: square linear systems A x = b solved by SOR whose relaxation factor ω is learned across
re-solves by a bandit (Khodak et al., "Learning to Relax"). The tuner lives with the compiled model, so

    for t in range(T):
        b.value = ...; res = m.solve(solver="sor")     # learns ω as it goes

A and b are read off the model's (affine) equality constraints at every solve, so parameters may change
A as well as b. ``omega="auto"`` (default) learns ω; a number fixes it. ``tuner_file`` persists the tuner
state as JSON across processes: written atomically under an advisory lock with read–merge–write, so processes
sharing one file keep every round; a fixed ω never writes it.
"""
from __future__ import annotations

import os

import torch

from ..problem import RawSolution
from ..solvers.io import FileWriteError
from ..solvers.linalg.bandit import SequenceSolver, TunerFileError, read_state_file
from .base import Backend, Option
from .flatten import FlatProblem


class SorBackend(Backend):
    name = "sor"
    description = "SOR with bandit-tuned relaxation across a sequence of linear systems (square A x = b)"
    supports = frozenset({"equality"})
    requires = frozenset({"linear_system"})
    cost = 0.5
    certificates = ("residual",)
    options = {
        "omega": Option(str, "auto", "relaxation factor in (0, 2), or 'auto' to learn it across solves"),
        "tuner": Option(str, "young", "learner for omega='auto': young (Young-model tuner, uses context when "
                        "given), smooth (SmoothCB), tsallis (Tsallis-INF, the paper's), exp3, contextual (binned "
                        "Tsallis-INF), chebcb", ("young", "smooth", "tsallis", "exp3", "contextual", "chebcb")),
        "context": Option(float, None, "a scalar feature of this system for the contextual tuner"),
        "context_range": Option(str, None, "'lo,hi' range of the context feature (contextual tuner)"),
        "tol": Option(float, 1e-8, "relative residual tolerance"),
        "max_iter": Option(int, None, "iteration cap per solve (default 10 n)"),
        "time_limit": Option(float, None, "wall-clock limit in seconds"),
        "symmetric": Option(bool, False, "symmetric SOR (SSOR) sweeps"),
        "tuner_file": Option(str, None, "JSON file the learned tuner (omega='auto') is loaded from and saved to, "
                             "safely shared by concurrent processes; a fixed omega leaves it untouched"),
    }

    def compile(self, problem, *, device="cpu", dtype=None):
        # one SequenceSolver per configuration, so switching omega back to "auto" keeps what was learned
        return {"flat": FlatProblem(problem, device, dtype or torch.float64), "solvers": {}}

    def _solver(self, compiled, options):
        key = (options["omega"], options["tuner"], options["tol"], options["max_iter"], options["symmetric"],
               options["context_range"])
        if key not in compiled["solvers"]:
            omega = options["omega"]
            tuner = options["tuner"] if str(omega).lower() == "auto" else _omega(omega)
            cr = options["context_range"]
            cr = tuple(float(v) for v in cr.split(",")) if isinstance(cr, str) else cr
            flat = compiled["flat"]
            solver = SequenceSolver(tuner=tuner, tol=options["tol"], max_iter=options["max_iter"],
                                    symmetric=options["symmetric"], context_range=cr, device=flat.device,
                                    dtype=flat.dtype)
            path = options["tuner_file"]
            if path and os.path.exists(path) and not isinstance(tuner, float):
                # resume what was *learned* (arms, tuner state, round log); the settings asked for now win
                state = read_state_file(path)  # a corrupt file or another structure: one line naming it
                if state["tuner"].get("kind") != solver.tuner.kind:
                    raise ValueError(f"tuner_file {path} holds a {state['tuner'].get('kind')!r} tuner, "
                                     f"but tuner={options['tuner']!r} was asked for")
                solver.adopt(state)
            compiled["solvers"][key] = solver
        return compiled["solvers"][key]

    @staticmethod
    def _system(flat: FlatProblem):
        """A and b of the constraints c(x) = A x - b, read off the expression exactly (no autograd): a scipy
        CSR matrix when sparse (a 5-point stencil written with a dense constant still gives 5 entries a row),
        so grids far beyond what a dense n x n matrix allows stay cheap."""
        A, c0 = flat.affine_rows(flat.eq_items)
        b = -c0
        if A.nnz > 0.2 * A.shape[0] * A.shape[1]:
            A = torch.as_tensor(A.toarray(), dtype=flat.dtype, device=flat.device)
        return A, torch.as_tensor(b, dtype=flat.dtype, device=flat.device)

    def solve(self, compiled, problem, options, callback):
        flat: FlatProblem = compiled["flat"]
        A, b = self._system(flat)
        solver = self._solver(compiled, options)
        start = flat.x0() if any(v.value is not None for v in flat.variables) else None
        out = solver.solve(A, b, context=options["context"], x0=start, time_limit=options["time_limit"],
                           callback=flat.callback(callback))
        if options["tuner_file"] and str(options["omega"]).lower() == "auto":
            # locked read-merge-write: processes sharing the file keep every round. A fixed omega learns
            # nothing, so it never touches (or replaces) a learned file.
            write_error = _save_tuner(solver, options["tuner_file"])
        else:
            write_error = None
        sol = RawSolution(out.status, iterations=out.iterations, message=out.message,
                          certificates=dict(out.certificates), counts=dict(out.counts), history=out.history,
                          extras={"omega": out.extras.get("omega"), "round": len(solver.rounds)})
        if write_error:  # the solve is not lost: the result comes back, the CLI prints it, then this (exit 2)
            sol.extras["write_errors"] = [write_error]
            sol.message = "; ".join(filter(None, [sol.message, write_error]))
        if out.x is not None and out.status.has_point:
            sol.values = flat.values(out.x)
            sol.objective = 0.0
        return sol


def _save_tuner(solver, path: str):
    """Save the learned tuner to `path`; None, or the one-line reason it could not be written (naming the
    tuner file, not its lock): a failed save after a solve must not lose the solve's result."""
    try:
        solver.save(path)
    except FileWriteError as exc:
        reason = str(exc)[len(f"cannot write {exc.path}: "):] if str(exc).startswith("cannot write ") else str(exc)
        return f"cannot write tuner file {path}: {reason}"
    except TunerFileError as exc:  # another writer left a tuner of another kind there meanwhile
        return f"tuner file not saved: {exc}"
    return None


def _omega(text) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        raise ValueError(f"omega must be a number in (0, 2) or 'auto', got {text!r}") from None


BACKENDS = [SorBackend()]
