"""``fine_tune``: in-place zeroth-order fine-tuning of an ``nn.Module`` (MeZO family), with checkpoints.

The module's trainable parameters are updated in place (by design: memory ≈ inference, no copies, no
gradients). Each step evaluates ``loss_fn(module, batch)`` twice per query under ``torch.no_grad`` and
``module.eval()`` (dropout off, as in MeZO), and applies a seeded update (see ``step.ZOStepper``).
``estimator="forward"`` uses forward-mode AD (jvp through ``torch.func.functional_call``) instead.

Determinism and resume: step k's noise comes from ``derive_seed(seed, k)`` and its batch from
``batches[k % len(batches)]`` or ``batches(k)``; a checkpoint stores the step, the parameters, the optimizer
state and the history, so a run resumed from step K is identical to an uninterrupted one.
"""
from __future__ import annotations

from typing import Any, Callable, Optional

import torch

from ..common import Budget, SolverOutput, Status
from ..oracles.zo_forward import forward_gradient
from ..oracles.zo_twopoint import ZOEvalError, ZONonFinite, to_scalar
from . import checkpoint
from .auto import GTOL, ModuleStationarity, is_auto, lengths, probe_module
from .step import ZOStepper, decay_flags

FT_ESTIMATORS = ("gaussian", "rademacher", "sparse", "forward")


class _Call(torch.nn.Module):
    def __init__(self, module, fn):
        super().__init__()
        self.m = module
        self.fn = fn

    def forward(self, batch):
        return self.fn(self.m, batch)


def _batch_getter(batches):
    if callable(batches):
        return batches, True
    if hasattr(batches, "__getitem__") and hasattr(batches, "__len__"):
        if len(batches) == 0:
            raise ValueError("batches is empty; expected at least one batch")
        return (lambda k: batches[k % len(batches)]), True
    it = iter(batches)
    return (lambda k: next(it)), False


def _probe(stepper, module, loss_fn, get_batch, steps):
    """lr="auto": probe the step length on the run's own first batches (an iterable's batches are
    consumed by the probe, so only indexable or callable ``batches`` give the same batches again)."""
    return probe_module(stepper, _closures(module, loss_fn, get_batch), steps)


def _closures(module, loss_fn, get_batch):
    def closure_at(k):
        batch = get_batch(k)
        return lambda: loss_fn(module, batch)
    return closure_at


def fine_tune(module: torch.nn.Module, loss_fn: Callable[[torch.nn.Module, Any], Any], batches, *,
              steps: int = 1000, estimator: str = "gaussian", q: int = 1, eps: float = 1e-3, lr="auto",
              optimizer: str = "sgd", momentum: float = 0.9, betas=(0.9, 0.999), weight_decay: float = 0.0,
              schedule: Optional[str] = None, warmup: int = 0, sparse_keep: float = 0.5, sparse_refresh: int = 100,
              seed: int = 0, fused: bool = True, seed_pool: Optional[int] = None,
              reduce: Optional[Callable] = None, checkpoint_every: Optional[int] = None,
              checkpoint_path: Optional[str] = None, resume_from: Optional[str] = None,
              time_limit: Optional[float] = None, callback=None, eval_fn: Optional[Callable] = None,
              eval_every: Optional[int] = None, log_every: int = 1, gtol: float = GTOL) -> SolverOutput:
    """Fine-tune ``module`` in place with zeroth-order steps.

    Args:
        module: the model; its ``requires_grad`` parameters are trained in place.
        loss_fn: ``loss_fn(module, batch) -> scalar`` (float or one-element tensor).
        batches: a sequence (step k uses ``batches[k % len]``), a callable ``k -> batch``, or an iterable
            (consumed in order; exact resume then needs the caller to skip consumed batches).
        steps: total number of steps (the run's ``max_iter``; a resumed run continues to ``steps``).
        estimator: "gaussian" (MeZO), "rademacher" (SPSA, cheaper noise), "sparse" (Sparse-MeZO with
            ``sparse_keep``), or "forward" (jvp forward gradient, exact directional derivative).
        q, eps, lr, optimizer, momentum, betas, weight_decay, schedule, warmup: see ``ZOStepper``.
            ``lr="auto"`` (default): RMS-normalized steps whose length is probed on a short horizon before
            the run (up to 9 probes of 2 % of ``steps``, undone afterwards; see ``zo.auto``), and 10 % of
            ``steps`` extra estimates at the start for the stationarity test: the run ends LOCALLY_OPTIMAL
            when the estimated gradient fell by 1/``gtol``, else ITERATION_LIMIT.
            ``schedule`` defaults to "linear" for lr="auto" and "constant" for a numeric lr (MeZO).
        seed: run seed. fused: fused restore+update sweep (default). seed_pool: FedKSeed pool size K.
        reduce: combine local loss scalars across workers (see ``optdsl.solvers.zo.distributed``).
        checkpoint_every, checkpoint_path: save a checkpoint every K steps (and at the end).
        resume_from: a checkpoint path to resume (module parameters, optimizer state, step, history).
        time_limit, callback: budget; callback gets iteration, loss, proj_grad, variance, lr, evals
            (and "eval" when ``eval_fn(module)`` runs every ``eval_every`` steps).

    Returns:
        SolverOutput with ``x=None`` (the module holds the result), ``objective`` the last loss estimate,
        ``history``, ``counts["f"]`` (forward passes), ``extras["seeds"]``/``["projs"]`` (the whole run as
        (seed, scalar) pairs; pool indices with ``seed_pool``), ``extras["bytes_per_step"]`` (what a
        data-parallel worker sends per step).
    """
    if not isinstance(module, torch.nn.Module):
        raise TypeError(f"module must be a torch.nn.Module, got {type(module).__name__}")
    if estimator not in FT_ESTIMATORS:
        raise ValueError(f"estimator must be one of {FT_ESTIMATORS}, got {estimator!r}")
    if not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps must be an integer >= 0, got {steps!r}")
    if checkpoint_every is not None and (checkpoint_every < 1 or not checkpoint_path):
        raise ValueError("checkpoint_every needs a positive value and a checkpoint_path")
    named = [(n, p) for n, p in module.named_parameters() if p.requires_grad]
    kind = "rademacher" if estimator == "rademacher" else "gaussian"
    if schedule is None:
        schedule = "linear" if is_auto(lr) else "constant"
    stepper = ZOStepper(named, lr=lr, eps=eps, q=q, kind=kind, optimizer=optimizer, momentum=momentum,
                        betas=betas, weight_decay=weight_decay, schedule=schedule, warmup=warmup,
                        max_iter=steps, sparse_keep=sparse_keep if estimator == "sparse" else None,
                        sparse_refresh=sparse_refresh, seed=seed, fused=fused, seed_pool=seed_pool, reduce=reduce,
                        decay=decay_flags(module))
    get_batch, indexable = _batch_getter(batches)
    start, history, seeds, projs = 0, [], [], []
    counts = {"f": 0, "jac": 0}
    # what a resumed run must agree with to continue the same run (checked against the checkpoint)
    settings = dict(estimator=estimator, q=q, eps=eps, lr=lr if isinstance(lr, (int, float, str)) else None,
                    optimizer=optimizer, momentum=momentum, betas=list(betas), weight_decay=weight_decay,
                    schedule=schedule, warmup=warmup, sparse_keep=sparse_keep if estimator == "sparse" else None,
                    sparse_refresh=sparse_refresh if estimator == "sparse" else None, seed_pool=seed_pool)
    if checkpoint_path:
        checkpoint.check_folder(checkpoint_path)
    if resume_from is not None:
        # weights_only=True: a crafted file cannot run code; names, shapes, seed and settings are checked first
        ck = checkpoint.load(resume_from, seed=seed, settings=settings, named=named, steps=steps)
        with torch.no_grad():
            for n, p in named:
                p.data.copy_(ck["params"][n].to(p.device))
        try:
            stepper.load_state_dict(ck["stepper"])
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise checkpoint.CheckpointError(f"checkpoint {resume_from}: field 'stepper' is malformed "
                                             f"({type(exc).__name__}: {exc})") from None
        start, history, counts = ck["step"], ck["history"], ck["counts"]
        seeds, projs = ck["seeds"], ck["projs"]
        if not indexable:
            for k in range(start):
                get_batch(k)
    was_training = module.training
    module.eval()
    probe_info = None
    if stepper.auto and stepper.lr0 is None and estimator != "forward":
        probe_info = _probe(stepper, module, loss_fn, get_batch, steps)
        counts["f"] += probe_info["evals"]
    elif stepper.auto and stepper.lr0 is None:  # forward gradients are exact directional derivatives
        stepper.lr0 = 1e-2 * lengths(stepper.params)
    tracker = ModuleStationarity(stepper, steps, gtol)
    if resume_from is not None:  # the estimates of the final window taken before the checkpoint
        tracker.last = [(list(sd), list(cf)) for sd, cf in ck["stepper"].get("stationarity_window", [])]
    if stepper.auto and estimator != "forward" and start == 0:
        counts["f"] += tracker.measure_start(_closures(module, loss_fn, get_batch))
    budget = Budget(steps - start, time_limit, callback)
    budget.history = history
    status, message, loss, k = None, "", None, start
    done = start  # completed steps: a step that fails (NaN loss, interrupt) is not counted
    ema_var = None
    call = _Call(module, loss_fn) if estimator == "forward" else None

    def save(path, k_next):  # atomic (unique temporary, fsync, rename): a crash never tears a checkpoint
        checkpoint.save(path, step=k_next, seed=seed, settings=settings, named=named,
                        stepper_state={**stepper.state_dict(),  # lr0 (lr="auto": the probed step) is in it
                                       "stationarity_window": [(list(sd), [float(c) for c in cf])
                                                               for sd, cf in tracker.last]},
                        history=budget.history, counts=dict(counts),
                        seeds=list(seeds), projs=list(projs))
    try:
        for j in budget:
            k = start + j
            batch = get_batch(k)
            if estimator == "forward":
                s, _ = stepper.step_seed(k)
                names = ["m." + n for n, _ in named]
                fn = lambda *ps: torch.func.functional_call(call, dict(zip(names, ps)), (batch,))  # noqa: E731
                est = forward_gradient(fn, [p for _, p in named], seed=s, q=q, where=f"iteration {k}")
                stepper.apply(est, k)
                counts["jac"] += est.n_evals
            else:
                def closure():
                    with torch.no_grad():
                        return loss_fn(module, batch)
                est = stepper.step(closure, k)
                counts["f"] += est.n_evals
            tracker.add(k, est)
            loss = est.loss
            done = k + 1
            proj = sum(est.projs) / len(est.projs)
            seeds.append(est.pool_index if getattr(est, "pool_index", None) is not None else est.seeds[0])
            projs.append(proj)
            ema_var = proj * proj if ema_var is None else 0.95 * ema_var + 0.05 * proj * proj
            info = dict(loss=loss, objective=loss, proj_grad=proj, variance=est.variance if q > 1 else ema_var,
                        lr=stepper.eta(k), evals=counts["f"] + counts["jac"])
            if eval_fn is not None and eval_every and (k + 1) % eval_every == 0:
                info["eval"] = to_scalar(eval_fn(module), f"eval_fn at iteration {k}")
            stop = budget.report(k, record=(k % log_every == 0), **info)
            if checkpoint_every and (k + 1) % checkpoint_every == 0:
                save(checkpoint_path, k + 1)
            if stop:
                break
    except ZONonFinite as exc:
        status, message = Status.NUMERICAL_ERROR, str(exc)
    except ZOEvalError as exc:
        status, message = Status.OTHER_ERROR, str(exc)
    except KeyboardInterrupt:
        budget.interrupt()
    finally:
        module.train(was_training)
    status = status or budget.status or Status.ITERATION_LIMIT
    certificates = {"last_proj_grad": projs[-1] if projs else float("nan")}
    if status == Status.ITERATION_LIMIT:
        message = f"completed {steps} steps"
        if stepper.auto:
            ok, why, cert = tracker.verdict()
            certificates.update(cert)
            if ok:
                status, message = Status.LOCALLY_OPTIMAL, f"completed {steps} steps; {why}"
            elif why:
                message += f"; {why}"
        if checkpoint_path and checkpoint_every:
            save(checkpoint_path, steps)
    n_q = stepper.q
    bytes_per_step = n_q * 2 * 8 if reduce is not None else 0  # two float64 loss scalars per query
    return SolverOutput(x=None, status=status, objective=loss, iterations=done,
                        message=message, counts=counts, history=budget.history, solve_time=budget.elapsed,
                        certificates=certificates,
                        extras={"lr_probe": probe_info, "lr": stepper.lr0 if stepper.auto else lr,
                                "seeds": seeds, "projs": projs, "bytes_per_step": bytes_per_step,
                                "stepper": stepper})
