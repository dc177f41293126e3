"""`Monitor`: the physics of a user's own PyTorch loop, measured every ``every`` steps on a held batch.

It sees the model only through a forward pre-hook (the training batch size: the first dimension of
the input of the forward pass, run with gradients on, before each check and the first step; the
largest seen, since an epoch's last batch may be partial) and the optimizer only by reading its
param groups and state; it evaluates the held loss with ``torch.func.functional_call`` on copies of
the parameters, in eval mode (dropout off, batch-norm statistics frozen), and never touches ``.grad``
or the global random state, so a run with the monitor gives the same parameters, bit for bit.

Per check (a row, see `COLUMNS`): the optimizer as physics (`descent.monitor.physics`), the noise trace
and temperature (`descent.monitor.measure`), kinetic and configurational temperatures, the sharpness
by warm-started Lanczos (`descent.train.hessian.SharpnessTracker`, in the rule's metric) against the
rule's edge, the cosine of the last two updates, the smallest eigenvalue when the run stalls, and the
diagnosis (`descent.monitor.diagnosis`).
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from descent._errors import DescentError, invalid
from descent.monitor.diagnosis import Diagnosis, Past, Thresholds, diagnose, loss_change, stalled
from descent.monitor.inputs import (
    MAX_PROBES,
    MAX_PRODUCTS,
    MAX_SEED,
    STEP_LOSS,
    check_bool,
    check_folder,
    check_held,
    check_held_loss,
    check_inputs,
    check_int,
    check_step_loss,
    check_step_tensors,
)
from descent.monitor.measure import HeldBatch, Inputs, Loss, take
from descent.monitor.physics import EDGE_MATH, Dynamics, read_dynamics
from descent.monitor.report import summary_line, write_report
from descent.train.hessian import SharpnessTracker, hutchinson_trace

#: a row's columns, in order
#: steps between checks by default: a check (3 Hessian-vector products on ``curvature_examples`` held
#: examples, 32 examples' own gradients, the held loss and gradient) costs about as much as 35
#: training steps of batch 32 on the digits MLP 64-64 (the first check, 12 products, three times
#: that), so every 1000 steps it costs under 5 % of training (BENCHMARKS.md, "The monitor's
#: overhead"); pass ``every=`` for a closer watch at a stated cost
DEFAULT_EVERY = 1000
#: the instrument sets: ``full=True`` adds the Hessian trace (Hutchinson, hence the configurational
#: temperature), takes the noise and the curvature on every held example (0: all) and doubles the
#: Lanczos products; any of them may also be given on its own
INSTRUMENTS = {
    "default": {"products": 3, "probes": 0, "noise_examples": 32, "curvature_examples": 64},
    "full": {"products": 6, "probes": 2, "noise_examples": 0, "curvature_examples": 0},
}

#: the most the suggested lr exceeds the lr in use, as a factor (`suggested_lr`)
RAISE_AT_MOST = 10.0

COLUMNS = (
    "step",
    "loss",
    "loss_se",
    "best_loss",
    "start_loss",
    "loss_trend",
    "held_loss",
    "grad_norm",
    "grad_norm_metric",
    "gradient_snr",
    "batch_size",
    "parameters",
    "rule",
    "lr",
    "momentum",
    "time_step",
    "friction",
    "effective_lr",
    "noise_trace",
    "noise_trace_se",
    "temperature",
    "temperature_se",
    "noise_floor",
    "kinetic_energy",
    "potential_energy",
    "kinetic_temperature",
    "config_temperature",
    "hessian_trace",
    "sharpness",
    "max_sharpness",
    "edge",
    "edge_math",
    "edge_ratio",
    "edge_lr",
    "suggested_lr",
    "lambda_min",
    "update_cosine",
    "diagnosis",
    "advice",
    "advised_lr",
    "advised_batch_size",
    "seconds",
)


def watch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    loss_fn: Loss,
    held: tuple[Inputs, torch.Tensor],
    every: int = DEFAULT_EVERY,
    **options: Any,
) -> Monitor:
    """Attach a `Monitor` to a training loop; call ``monitor.step(loss)`` after each ``optimizer.step()``.

    >>> import torch
    >>> model = torch.nn.Linear(3, 1)
    >>> optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    >>> x, y = torch.randn(64, 3), torch.randn(64, 1)
    >>> monitor = watch(model, optimizer, torch.nn.functional.mse_loss, (x, y), every=5, verbose=False)
    >>> for _ in range(20):
    ...     optimizer.zero_grad(); loss = torch.nn.functional.mse_loss(model(x[:16]), y[:16]); loss.backward()
    ...     optimizer.step(); _ = monitor.step(loss)
    >>> [row["step"] for row in monitor.rows], monitor.rows[-1]["batch_size"]
    ([5, 10, 15, 20], 16)
    """
    return Monitor(model, optimizer, loss_fn, held, every, **options)


class Monitor:
    """See the module's docstring. ``held``: a fixed batch ``(x, y)`` best taken from the *training*
    examples (the spread of their gradients is SGD's noise; held-out examples overstate it once the
    model fits its training set), a few times the batch size; ``x`` is the model's input: a tensor, a
    tuple of tensors (``model(*x)``) or a dict of tensors (``model(**x)``; ``model(x)`` when the forward's
    signature takes one argument), every tensor with the examples along dimension 0; ``watch`` runs
    ``loss_fn(model(x), y)`` once and refuses a batch it cannot run or a loss that is not a differentiable
    scalar tensor. ``every``: steps between checks
    (``DEFAULT_EVERY``); ``full``: every instrument (``INSTRUMENTS``), else the cheap default set;
    ``products``: Lanczos products per check (warm start; at most the trained parameters and
    ``MAX_PRODUCTS``); ``probes``: Hutchinson probes per check for ``tr H`` (0: no configurational
    temperature; at most ``MAX_PROBES``); ``noise_examples``: held examples whose own gradients
    give ``tr(Sigma)`` at a check (the next ones each check, cyclically; the loss and mean gradient use
    the whole held batch); ``curvature_examples``: the first held examples whose loss the
    Hessian-vector products differentiate (sharpness, the saddle test, the trace: 3 products on 256
    examples cost as many passes as some 30 training steps of 32); ``verbose``: print the summary line
    at each check (to stderr);
    ``tensorboard``: a log folder for a SummaryWriter (needs the ``tensorboard`` package);
    ``batch_size``: the training batch size if no tensor the model's forward pass takes (the first
    tensor, in a tuple or dict too, or keyword argument) has the batch along dimension 0;
    ``thresholds``: the diagnoses' numbers; ``seed``: the Lanczos and Hutchinson vectors' seed."""

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        loss_fn: Loss,
        held: tuple[Inputs, torch.Tensor],
        every: int = DEFAULT_EVERY,
        *,
        full: bool = False,
        products: int | None = None,
        probes: int | None = None,
        noise_examples: int | None = None,
        curvature_examples: int | None = None,
        verbose: bool = True,
        tensorboard: str | Path | None = None,
        batch_size: int | None = None,
        thresholds: Thresholds | None = None,
        seed: int = 0,
    ) -> None:
        trained = check_inputs(model, optimizer, loss_fn)
        x, y = check_held(held)
        if not isinstance(full, bool):
            raise invalid("full", full, "True (every instrument) or False (the cheap default set)")
        preset = INSTRUMENTS["full" if full else "default"]
        size, n_held = sum(p.numel() for _, p in trained), len(y)
        products = min(preset["products"], size) if products is None else products
        probes = preset["probes"] if probes is None else probes
        if noise_examples is None:
            noise_examples = min(preset["noise_examples"] or n_held, n_held)
        if curvature_examples is None:
            curvature_examples = min(preset["curvature_examples"] or n_held, n_held)
        self.every = check_int("every", every, 1)
        check_int("products", products, 1, min(MAX_PRODUCTS, size))
        if not (type(probes) is int and probes == 0):  # 1 probe: no standard error
            allowed = f"0 (no configurational temperature) or an integer in [2, {MAX_PROBES}]"
            check_int("probes", probes, 2, MAX_PROBES, allowed)
        self.probes = probes
        self.noise_examples = check_int("noise_examples", noise_examples, 2, n_held)
        m = check_int("curvature_examples", curvature_examples, 1, n_held)
        self.seed = check_int("seed", seed, 0, MAX_SEED)
        if batch_size is not None:
            check_int("batch_size", batch_size, 1)
        if thresholds is not None and not isinstance(thresholds, Thresholds):
            raise invalid("thresholds", thresholds, "None or a descent.monitor.Thresholds")
        self.verbose = check_bool("verbose", verbose, "print the summary line at each check")
        folder = None if tensorboard is None else check_folder("tensorboard", tensorboard, "a log folder")

        self.model, self.optimizer = model, optimizer
        self.thresholds = thresholds or Thresholds()
        self.names = [name for name, _ in trained]
        self.params = [p for _, p in trained]
        self.size = size
        self.held = HeldBatch(model, self.names, loss_fn, x, y)
        # its own object even when it is the whole held batch: only it runs batch norm in training mode
        self.curvature = HeldBatch(model, self.names, loss_fn, take(x, slice(0, m)), y[:m])
        self._snapshots: dict[int, torch.Tensor] = {0: self._theta()}
        self._measuring = False
        with self._evaluating():  # the held loss before training: the model and loss_fn run on held
            self._start_loss = check_held_loss(self.held, self._snapshots[0], held)
        self.writer = _summary_writer(folder) if folder is not None else None  # the last check
        # warm-started Lanczos for the top eigenvalue and, when a check looks stalled, for the bottom
        # one (the top of -H); both start from random vectors, never from an eigsh to convergence
        self.tracker, self.low_tracker = (
            SharpnessTracker(every=1, products=products, keep=min(2, products), seed=s, first="random")
            for s in (seed, seed + 1)
        )
        self.rows: list[dict[str, Any]] = []
        self.steps = 0
        self.batch_size = batch_size
        self._seen_batch: int | None = None
        self._diagnosis: Diagnosis | None = None
        self._losses: list[torch.Tensor | float] = []
        # the run so far, kept as it goes (a check never rereads the rows: a long run's checks stay cheap)
        self._best_loss, self._peak_sharpness = self._start_loss, math.nan
        self._past = Past(self._start_loss)  # the blow-ups and crossings the diagnosis remembers
        self._hook: Any = None  # a forward pre-hook, on for the one forward pass before a check
        self._listen()

    # --- the loop's side ------------------------------------------------------------------------
    def _listen(self) -> None:
        """See the batch size of the next training forward pass (a hook on every pass would cost a
        few microseconds a step: the module's slow call path)."""
        if self._hook is None:
            self._hook = self.model.register_forward_pre_hook(self._see_batch, with_kwargs=True)

    def _see_batch(self, module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """The first dimension of the pass's first tensor argument (in a tuple or dict too), or kwarg."""
        if self._measuring or not torch.is_grad_enabled():
            return
        first = next((v for v in _tensors([*args, *kwargs.values()]) if v.ndim > 0), None)
        if first is not None:
            # the largest seen: the pass before a check may be an epoch's last, partial batch
            self._seen_batch = max(int(first.shape[0]), self._seen_batch or 0)
            self._hook.remove()
            self._hook = None

    def step(self, loss: torch.Tensor | float | None = None) -> dict[str, Any] | None:
        """Count one optimizer step (``loss``: its batch loss); at every ``every``-th, measure and
        return the new row (else None)."""
        if isinstance(loss, torch.Tensor):
            if loss.is_cpu:  # its number: cheaper to take now than to stack a thousand at the check
                if loss.numel() != 1:
                    check_step_tensors([loss])  # one line naming step(loss)
                self._losses.append(loss.item())
            else:  # no sync with the device: its size is checked when a check reads it
                self._losses.append(loss.detach())
        elif loss is not None:
            self._losses.append(check_step_loss(loss))
        self.steps += 1
        t = self.steps
        if (t + 1) % self.every == 0:
            self._listen()  # the next step's forward pass gives the batch size of its check
        if (t + 1) % self.every == 0 or (t + 2) % self.every == 0 or t % self.every == 0:
            self._snapshots[t] = self._theta()
            for old in [s for s in self._snapshots if s < t - 2]:
                del self._snapshots[old]
        if t % self.every:
            return None
        row = self._check()
        if self.verbose:
            print(self.line, file=sys.stderr)
        if self.writer is not None:
            for key, value in row.items():
                if isinstance(value, (int, float)) and key != "step" and math.isfinite(value):
                    self.writer.add_scalar(f"monitor/{key}", value, t)
            self.writer.flush()  # a running TensorBoard sees the check now, not after flush_secs
        return row

    # --- what it says ---------------------------------------------------------------------------
    @property
    def diagnosis(self) -> Diagnosis | None:
        """The latest check's diagnosis (None before the first check)."""
        return self._diagnosis if self.rows else None

    @property
    def line(self) -> str:
        """One line for the latest check (empty before the first)."""
        return summary_line(self.rows[-1]) if self.rows else ""

    @property
    def postfix(self) -> dict[str, str]:
        """The latest check as a short dict, for ``tqdm``'s ``set_postfix``."""
        if not self.rows:
            return {}
        row = self.rows[-1]
        return {
            "T": f"{row['temperature']:.2g}",
            "S/E": f"{row['edge_ratio']:.2f}",
            "lr*": f"{row['suggested_lr']:.2g}",
            "dx": row["diagnosis"],
        }

    @property
    def alarms(self) -> list[int]:
        """The checks at which the sharpness crossed the edge (``S/E`` reached ``thresholds.edge``
        after a check below it, or at the first check)."""
        found, above = [], False
        for row in self.rows:
            now = row["edge_ratio"] >= self.thresholds.edge or not math.isfinite(row["loss"])
            if now and not above:
                found.append(row["step"])
            above = now
        return found

    def report(self, folder: str | Path) -> dict[str, Path]:
        """Write ``monitor.csv``, ``monitor.json``, ``monitor.png``, ``monitor.md`` and ``monitor.html``
        into ``folder`` (made if need be); returns their paths."""
        path = check_folder("folder", folder, "the report's folder")
        try:
            return write_report(path, self.rows, COLUMNS, self.notes)
        except OSError as error:
            raise invalid("folder", str(folder), _writable(error)) from None

    def close(self) -> None:
        """Remove the hook and close the TensorBoard writer."""
        if self._hook is not None:
            self._hook.remove()
            self._hook = None
        if self.writer is not None:
            self.writer.close()

    @property
    def notes(self) -> list[str]:
        notes = []
        if self.held.vmap_failed:
            notes.append(f"per-example gradients by a loop (torch.func: {self.held.vmap_failed})")
        if (
            len({(g["lr"], str(g.get("momentum")), str(g.get("betas"))) for g in self.optimizer.param_groups})
            > 1
        ):
            notes.append("param groups differ: the first group's lr and momentum are read")
        return notes

    # --- a check --------------------------------------------------------------------------------
    def _theta(self) -> torch.Tensor:
        return torch.cat([p.detach().reshape(-1) for p in self.params]).clone()

    @contextlib.contextmanager
    def _evaluating(self):
        """Every module in evaluation mode (dropout off, batch norm on its running statistics), but the
        curvature batch runs the batch-norm layers that were training on batch statistics so
        (`HeldBatch.train_norms`)."""
        modes = [(m, m.training) for m in self.model.modules()]
        self.curvature.train_norms = [
            m for m, mode in modes if mode and isinstance(m, nn.modules.batchnorm._BatchNorm)
        ]
        self._measuring = True
        try:
            for m, _ in modes:
                m.training = False
            yield
        finally:
            for m, mode in modes:
                m.training = mode
            self._measuring = False

    def _check(self) -> dict[str, Any]:
        start = time.perf_counter()
        with self._evaluating():
            row = self._measure()
            window = (
                [*self.rows[-(self.thresholds.window - 1) :], row] if self.thresholds.window > 1 else [row]
            )
            if self.size > 1 and math.isfinite(row["loss"]) and stalled(window, self.thresholds):
                row["lambda_min"] = self._lambda_min(row["_scale"])
        del row["_scale"]
        change, _, steps = loss_change(window)
        row["loss_trend"] = (
            change / steps / abs(window[0]["loss"]) if len(window) > 1 and window[0]["loss"] else 0.0
        )
        self._past.add(row, self.thresholds)
        self._diagnosis = diagnose(window, self.thresholds, past=self._past)
        row["diagnosis"], row["advice"] = self._diagnosis.name, self._diagnosis.message
        row["advised_lr"] = math.nan if self._diagnosis.lr is None else self._diagnosis.lr
        row["advised_batch_size"] = self._diagnosis.batch_size
        row["seconds"] = time.perf_counter() - start
        self.rows.append({key: row[key] for key in COLUMNS})
        self._best_loss, self._peak_sharpness = row["best_loss"], row["max_sharpness"]
        return self.rows[-1]

    def _measure(self) -> dict[str, Any]:
        t, d = self.steps, self.size
        theta = self._snapshots[t]
        dyn = read_dynamics(self.optimizer, self.params)
        batch = self.batch_size or self._seen_batch or self.held.size
        if not bool(torch.isfinite(theta).all()):
            return self._diverged_row(dyn, batch)
        first = len(self.rows) * self.noise_examples  # each check takes the next held examples
        active = dyn.active_scale  # P, without the coordinates training barely moves
        if active is not None:  # the degrees of freedom: the coordinates training moves
            d = max(int(torch.isfinite(active).sum()), 1)
        noise = self.held.noise(theta, active, self.noise_examples, first)
        g = noise.gradient
        g_metric2 = float(g @ g if active is None else g @ (g / active))
        temperature = dyn.eta * noise.trace / (2 * batch * d * (1 - dyn.beta)) + dyn.thermal
        temperature_se = dyn.eta * noise.trace_se / (2 * batch * d * (1 - dyn.beta))
        theta64, scale64 = theta.to(torch.float64), None if dyn.scale is None else dyn.scale.to(torch.float64)
        tracked = self.tracker(len(self.tracker.steps), self.curvature.loss64, theta64, scale64)
        sharpness = math.nan if tracked is None else tracked  # every call is a check (every=1)
        trace = math.nan
        if self.probes:
            trace = hutchinson_trace(
                self.curvature.loss64, theta64, self.probes, self.seed + t, scale=scale64
            ).mean
        kinetic = math.nan
        if dyn.velocity is not None:
            u = dyn.velocity
            kinetic = float(u @ u if dyn.scale is None else u @ (dyn.scale * u)) / (2 * dyn.eta)
        loss, loss_se = self._interval_loss(noise.loss)
        edge_lr, peak = dyn.edge_lr(sharpness), -_lowest(-self._peak_sharpness, -sharpness)
        return {
            "step": t,
            "loss": loss,
            "loss_se": loss_se,
            "best_loss": _lowest(self._best_loss, loss),
            "start_loss": self._start_loss,
            "held_loss": noise.loss,
            "grad_norm": float(torch.linalg.vector_norm(g)),
            "grad_norm_metric": math.sqrt(g_metric2),
            "gradient_snr": g_metric2 * self.held.size / noise.trace if noise.trace > 0 else math.inf,
            **self._optimizer_columns(dyn, batch),
            "noise_trace": noise.trace,
            "noise_trace_se": noise.trace_se,
            "temperature": temperature,
            "temperature_se": temperature_se,
            "noise_floor": d * temperature / 2,
            "kinetic_energy": kinetic,
            "potential_energy": loss,
            "kinetic_temperature": 2 * kinetic / d,
            "config_temperature": g_metric2 / trace if trace > 0 else math.nan,
            "hessian_trace": trace,
            "sharpness": sharpness,
            "max_sharpness": peak,
            "edge_ratio": sharpness / dyn.edge,
            "edge_lr": edge_lr,
            "suggested_lr": suggested_lr(dyn, peak),
            "lambda_min": math.nan,
            "update_cosine": self._update_cosine(t),
            "_scale": scale64,
        }

    def _optimizer_columns(self, dyn: Dynamics, batch: int) -> dict[str, Any]:
        """The optimizer's columns: the physical terms and the edge."""
        return {
            "batch_size": batch,
            "parameters": self.size,
            "rule": dyn.rule,
            "lr": dyn.lr,
            "momentum": dyn.beta,
            "time_step": dyn.time_step,
            "friction": dyn.friction,
            "effective_lr": dyn.effective_lr,
            "edge": dyn.edge,
            "edge_math": EDGE_MATH[dyn.rule],
        }

    def _diverged_row(self, dyn: Dynamics, batch: int) -> dict[str, Any]:
        """A row for parameters that are no longer finite: nothing can be measured; the loss is NaN."""
        self._losses = []
        row: dict[str, Any] = dict.fromkeys(COLUMNS, math.nan)
        best, peak = self._best_loss, self._peak_sharpness
        edge_lr = dyn.edge_lr(peak) if math.isfinite(peak) else math.nan
        row.update(self._optimizer_columns(dyn, batch))
        row.update(
            step=self.steps,
            best_loss=best,
            start_loss=self._start_loss,
            max_sharpness=peak,
            edge_lr=edge_lr,
            suggested_lr=min(edge_lr / 2, dyn.lr / 10) if math.isfinite(edge_lr) else dyn.lr / 10,
            _scale=None,
        )
        return row

    def _interval_loss(self, held_loss: float) -> tuple[float, float]:
        """The mean batch loss since the last check and its standard error (the held loss if the
        loop gave none)."""
        if not self._losses:
            return held_loss, 0.0
        tensors = [v for v in self._losses if isinstance(v, torch.Tensor)]
        numbers = [v for v in self._losses if not isinstance(v, torch.Tensor)]
        parts = []
        if tensors:
            try:  # one op for the usual case: every loss a one-element tensor of one shape
                stacked = torch.stack(tensors)
            except RuntimeError:  # shapes differ
                stacked = None
            if stacked is None or stacked.numel() != len(tensors) or stacked.is_complex():
                try:
                    check_step_tensors(tensors)  # names a tensor that is not one real number
                except DescentError:
                    self._losses = []  # the next check reads the losses given after this one
                    raise
                stacked = torch.stack([v.reshape(()) for v in tensors])  # shapes () and (1,) mixed
            parts = [stacked.reshape(-1).to(torch.float64).cpu()]
        try:
            floats = torch.tensor(numbers, dtype=torch.float64)
        except TypeError:  # a complex tensor's number
            self._losses = []
            raise invalid("step(loss)", "a complex number", STEP_LOSS) from None
        values = torch.cat([*parts, floats])
        self._losses = []
        se = float(values.std() / math.sqrt(len(values))) if len(values) > 1 else 0.0
        return float(values.mean()), se

    def _update_cosine(self, t: int) -> float:
        """The cosine between the last two updates ``w_t - w_{t-1}`` and ``w_{t-1} - w_{t-2}``."""
        if t - 2 not in self._snapshots:
            return math.nan
        a = self._snapshots[t] - self._snapshots[t - 1]
        b = self._snapshots[t - 1] - self._snapshots[t - 2]
        norms = float(torch.linalg.vector_norm(a) * torch.linalg.vector_norm(b))
        return float(a @ b) / norms if norms > 0 else math.nan

    def _lambda_min(self, scale: torch.Tensor | None) -> float:
        """The smallest eigenvalue (of ``P^-1 H``): minus the largest of ``-H``, tracked as the top one
        is (a Ritz value of -H above 0 proves a direction of negative curvature)."""
        theta = self._snapshots[self.steps].to(torch.float64)
        negated = lambda w: -self.curvature.loss64(w)  # noqa: E731
        top = self.low_tracker(len(self.low_tracker.steps), negated, theta, scale)
        return math.nan if top is None else -top


def suggested_lr(dyn: Dynamics, peak_sharpness: float) -> float:
    """Half the edge lr at the largest sharpness the run has met (not today's: a rerun from the start
    meets those regions again), and at most ``RAISE_AT_MOST`` times the lr in use (the sharpness grows
    as training goes on, toward the edge of whatever lr runs: a rate read off the curvature met so
    far bounds it from above, and a larger jump would leave the region it was measured in)."""
    return min(dyn.edge_lr(peak_sharpness) / 2, RAISE_AT_MOST * dyn.lr)


def _tensors(values: list[Any]) -> list[torch.Tensor]:
    """The tensors among ``values`` and inside the tuples, lists and dicts among them, in order."""
    found: list[torch.Tensor] = []
    for value in values:
        if isinstance(value, torch.Tensor):
            found.append(value)
        elif isinstance(value, (tuple, list, dict)):
            found += _tensors(list(value.values()) if isinstance(value, dict) else list(value))
    return found


def _lowest(so_far: float, new: float) -> float:
    """The smaller of the two, NaN counting as no value (NaN only if both are)."""
    return so_far if math.isnan(new) or new >= so_far else new


def tensorboard_available() -> None:
    """Raise one clear line unless ``torch.utils.tensorboard`` imports (the ``tensorboard`` package)."""
    try:
        import torch.utils.tensorboard  # noqa: F401
    except ImportError:
        raise DescentError(
            "tensorboard is not installed: pip install tensorboard (the extra descent[monitor]), "
            "or leave tensorboard=None"
        ) from None


def _summary_writer(folder: str | Path):
    tensorboard_available()
    from torch.utils.tensorboard import SummaryWriter

    try:
        return SummaryWriter(str(folder))
    except OSError as error:
        raise invalid("tensorboard", str(folder), _writable(error)) from None


def _writable(error: OSError) -> str:
    return f"a folder that can be made and written ({type(error).__name__}: {error.strerror})"
