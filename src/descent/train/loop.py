"""The training loop: batch GD, SGD and mini-batch descent on a real network, with per-epoch
metrics, a checkpoint every epoch and an exact resume.

One epoch is one pass over the training set ``D`` (n examples), minimising
``L(W) = 1/n sum_i loss(f_W(x_i), y_i)``:

- ``batch_size="full"``: batch gradient descent, one step on all of ``D`` (in its stored order);
- ``batch_size=1``: SGD, n steps on one example each;
- ``batch_size=B``: mini-batches, ceil(n/B) steps on B examples (the last one smaller).

For 1 and B the order is a fresh ``torch.randperm(n)`` each epoch, drawn from one
``torch.Generator`` seeded with ``seed``. Each step: ``g = grad L_batch(W)``; its norm ``|g|``
(before clipping) is recorded; with ``clip`` set, ``g <- g * min(1, clip/|g|)`` over all parameters
together (``torch.nn.utils.clip_grad_norm_``, counted when ``|g| > clip``); then the optimizer
steps and the scheduler, if any, follows.

Optimizers: every descent rule (``descent list optimizers``) through
:class:`~descent.optim.TorchOptimizer`, or torch's own as ``torch:SGD``, ``torch:Adam``, ... with
``lr``, ``momentum``, ``weight_decay`` and ``hyper`` (``betas``, ``eps``, ``nesterov``, ...) as keyword
arguments. Schedules (``SCHEDULES``), torch's schedulers:

==================  ================================================================================
schedule            scheduler
==================  ================================================================================
step:EPOCHS:GAMMA   StepLR(step_size=EPOCHS, gamma=GAMMA), stepped each epoch
cosine              CosineAnnealingLR(T_max=epochs), stepped each epoch (lr -> 0 at the end)
onecycle            OneCycleLR(max_lr=lr, total_steps=all steps), stepped each step
plateau             ReduceLROnPlateau(factor 0.1, patience 10) on the training loss, each epoch
==================  ================================================================================

Per epoch (``METRICS``): the training and test loss and accuracy of the model at the epoch's end
(accuracy for classification only), the mean batch loss over its steps, the mean gradient norm
before clipping and how many steps were clipped, the update norm ``|W_end - W_start|`` (how far
the epoch moved the parameters), the learning rate of its last step, cumulative steps and examples,
and wall time.

With ``out``: ``config.json`` at the start; each epoch ends by writing ``checkpoint.pt`` (model,
optimizer, scheduler, the data-order generator, metrics; atomically) and appending its row to
``metrics.csv``; at the end (Ctrl-C included) ``metrics.csv`` and ``metrics.json`` are rewritten
whole and ``curves.png`` is drawn. ``resume=True`` continues from ``checkpoint.pt`` to the same
result, bit for bit, as a run that was never interrupted (same machine, thread count and versions).
Ctrl-C stops the loop; the result says ``interrupted`` and the last checkpoint holds what finished.
A run whose training loss stops being finite stops after that epoch (``TrainResult.diverged_at``).

>>> config = TrainConfig(dataset="iris", model="mlp:16", optimizer="momentum", lr=0.1,
...                      momentum=0.9, batch_size=16, epochs=30, seed=0)
>>> result = train(config)
>>> last = result.metrics[-1]
>>> last["epoch"], last["steps"], last["examples"]  # 120 training examples: 8 steps an epoch
(30, 240, 3600)
>>> last["train_accuracy"] > 0.9
True
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import torch

from descent._errors import DescentError, check_number, invalid, listed
from descent._json import numbers_out
from descent.train.checkpoint import atomic_write_text, load_checkpoint, save_checkpoint
from descent.train.data import DATASETS, Dataset, load_dataset
from descent.train.models import (
    ACTIVATIONS,
    LOSSES,
    accuracy,
    build_model,
    loss_function,
    parse_init,
    parse_model,
)

SCHEDULES = ("step:EPOCHS:GAMMA", "cosine", "onecycle", "plateau")
DTYPES = {"float64": torch.float64, "float32": torch.float32}
#: the columns of metrics.csv, in order
METRICS = (
    "epoch",
    "steps",
    "examples",
    "train_loss",
    "train_accuracy",
    "test_loss",
    "test_accuracy",
    "batch_loss",
    "grad_norm",
    "clipped_steps",
    "update_norm",
    "lr",
    "epoch_seconds",
    "seconds",
)
#: metrics that measure time, so differ between runs that are otherwise equal
TIMES = ("epoch_seconds", "seconds")
MONITOR_HELD = 256  # training examples the monitor's held batch takes (train(monitor_every=...))
CHECKPOINT_FORMAT = 1


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run depends on; validated at construction (a bad value raises
    :class:`~descent._errors.DescentError` naming the field). ``loss=None``: cross-entropy for
    classification, mse for regression. ``hyper``: the optimizer's other keyword arguments."""

    dataset: str = "digits"
    target: str | None = None
    test_fraction: float = 0.2
    n: int | None = None
    noise: float | None = None
    model: str = "mlp:64,64"
    activation: str = "relu"
    init: str = "default"
    loss: str | None = None
    optimizer: str = "momentum"
    lr: float = 0.1
    momentum: float | None = None
    weight_decay: float = 0.0
    hyper: dict[str, Any] = field(default_factory=dict)
    batch_size: int | str = 32
    epochs: int = 20
    clip: float | None = None
    schedule: str | None = None
    seed: int = 0
    dtype: str = "float64"
    device: str = "cpu"

    def __post_init__(self) -> None:
        if isinstance(self.hyper, dict):  # lists (from JSON) as tuples, so a config equals its copy
            hyper = {k: tuple(v) if isinstance(v, list) else v for k, v in self.hyper.items()}
            object.__setattr__(self, "hyper", hyper)
        check_config(self)

    def to_dict(self) -> dict[str, Any]:
        """The fields as JSON values (tuples become lists)."""
        return json.loads(json.dumps(asdict(self)))

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise invalid("config key", unknown[0], f"one of: {listed(sorted(known))}")
        return cls(**values)


def _count(parameter: str, value: object, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise invalid(parameter, value, f"an integer >= {low}")
    return value


def parse_schedule(text: str | None) -> tuple[str, tuple[float, ...]]:
    """``"step:30:0.1"`` -> ``("step", (30, 0.1))``; ``None`` -> ``("constant", ())``."""
    if text is None or text == "constant":
        return "constant", ()
    allowed = f"one of: {listed(SCHEDULES)} (EPOCHS an integer >= 1, GAMMA in (0, 1])"
    if not isinstance(text, str):
        raise invalid("schedule", text, allowed)
    kind, *values = text.split(":")
    if kind in ("cosine", "onecycle", "plateau") and not values:
        return kind, ()
    if kind == "step" and len(values) == 2:
        try:
            epochs, gamma = int(values[0]), check_number("schedule", values[1], 0, 1, low_open=True)
        except ValueError:
            raise invalid("schedule", text, allowed) from None
        if epochs >= 1:
            return kind, (epochs, gamma)
    raise invalid("schedule", text, allowed)


def check_config(config: TrainConfig) -> None:
    """Validate every field, in the order the CLI lists them; the optimizer's values by building it
    on a dummy parameter."""
    if not isinstance(config.dataset, str) or (
        config.dataset not in DATASETS and not config.dataset.lower().endswith(".csv")
    ):
        raise invalid("dataset", config.dataset, f"one of: {listed(DATASETS)}, or a path to a .csv file")
    if config.dataset.lower().endswith(".csv") and not Path(config.dataset).is_file():
        raise invalid("dataset", config.dataset, "an existing .csv file (no such file)")
    check_number("test_fraction", config.test_fraction, 0, 1, low_open=True, high_open=True)
    if config.n is not None:
        _count("n", config.n, 2)
    if config.noise is not None:
        check_number("noise", config.noise, 0)
    parse_model(config.model)
    if config.activation not in ACTIVATIONS:
        raise invalid("activation", config.activation, f"one of: {listed(ACTIVATIONS)}")
    parse_init(config.init)
    if config.loss is not None and config.loss not in LOSSES:
        raise invalid("loss", config.loss, f"one of: {listed(LOSSES)}")
    check_number("lr", config.lr, 0, low_open=True)
    if config.momentum is not None:
        check_number("momentum", config.momentum, 0, 1, high_open=True)
    check_number("weight_decay", config.weight_decay, 0)
    if not isinstance(config.hyper, dict):
        raise invalid("hyper", config.hyper, "a dict of the optimizer's other keyword arguments")
    if config.batch_size != "full":
        allowed = "'full' (batch GD), 1 (SGD) or an integer >= 2 (mini-batches)"
        if isinstance(config.batch_size, bool) or not isinstance(config.batch_size, int):
            raise invalid("batch_size", config.batch_size, allowed)
        if config.batch_size < 1:
            raise invalid("batch_size", config.batch_size, allowed)
    _count("epochs", config.epochs, 1)
    if config.clip is not None:
        check_number("clip", config.clip, 0, low_open=True)
    parse_schedule(config.schedule)
    _count("seed", config.seed, 0)
    if config.dtype not in DTYPES:
        raise invalid("dtype", config.dtype, f"one of: {listed(DTYPES)}")
    check_device(config.device)
    optimizer = make_optimizer(config, [torch.zeros(1, dtype=DTYPES[config.dtype], requires_grad=True)])
    rule = getattr(optimizer, "rule", None)
    if config.schedule is not None and rule is not None and rule.per_model:
        raise invalid("schedule", config.schedule, f"none with {rule.name}, which learns its own rate")


def check_device(device: object) -> None:
    """``cpu``, ``cuda`` or ``cuda:N``, present on this machine."""
    if not isinstance(device, str) or not re.fullmatch(r"cpu|cuda(:\d+)?", device):
        raise invalid("device", device, "cpu, cuda or cuda:N")
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise invalid("device", device, "'cpu' (no CUDA device is available here)")
        index = int(device.partition(":")[2] or 0)
        if index >= torch.cuda.device_count():
            raise invalid("device", device, f"cuda:0 to cuda:{torch.cuda.device_count() - 1}")


def _optimizer_options(config: TrainConfig) -> dict[str, Any]:
    options: dict[str, Any] = {"lr": config.lr, **config.hyper}
    if config.momentum is not None:
        options["momentum"] = config.momentum
    if config.weight_decay:
        options["weight_decay"] = config.weight_decay
    return options


def _not_taken(key: str, options: dict[str, Any], name: str, takes: str) -> DescentError:
    """A keyword ``name`` does not take, named by its config field (``momentum``, else ``hyper``)."""
    if key in ("momentum", "weight_decay"):
        return invalid(key, options[key], f"none for {name}, which takes: {takes}")
    return invalid("hyper", f"{key}={options[key]!r}", f"an option {name} takes: {takes}")


def _renamed(error: DescentError, rule: str, options: dict[str, Any]) -> DescentError:
    """A TorchOptimizer error named by the config field behind it (``momentum.lr`` -> ``lr``)."""
    parameter = error.parameter or ""
    if parameter == f"{rule} option":  # a keyword the rule does not take
        takes = (error.allowed or "").removeprefix("one of: ")
        return _not_taken(str(error.value), options, rule, takes)
    head, _, key = parameter.partition(".")
    if head == rule and key in ("lr", "momentum", "weight_decay"):
        return invalid(key, error.value, error.allowed or "")
    return invalid("hyper", f"{key or parameter}={error.value!r}", error.allowed or "")


def torch_optimizers() -> list[str]:
    """torch.optim's optimizers that step without a closure on dense gradients (not LBFGS,
    SparseAdam)."""
    return sorted(
        name
        for name, cls in vars(torch.optim).items()
        if isinstance(cls, type)
        and issubclass(cls, torch.optim.Optimizer)
        and name not in ("Optimizer", "LBFGS", "SparseAdam")
    )


def make_optimizer(config: TrainConfig, params) -> torch.optim.Optimizer:
    """The optimizer ``config.optimizer`` over ``params``: a descent rule through TorchOptimizer,
    or ``torch:NAME`` for ``torch.optim.NAME``."""
    options = _optimizer_options(config)
    name = config.optimizer
    if isinstance(name, str) and name.startswith("torch:"):
        names = torch_optimizers()
        if name[len("torch:") :] not in names:
            raise invalid("optimizer", name, f"torch:NAME with NAME one of: {listed(names)}")
        cls = getattr(torch.optim, name[len("torch:") :])
        import inspect

        accepted = inspect.signature(cls.__init__).parameters
        for key in options:
            if key not in accepted:
                takes = listed(k for k in accepted if k not in ("self", "params"))
                raise _not_taken(key, options, name, takes)
        try:
            return cls(params, **options)
        except (TypeError, ValueError) as error:
            reason = " ".join(str(error).split())
            raise invalid("optimizer", name, f"settings and parameters it accepts ({reason})") from None
    from descent.optim import RULES, TorchOptimizer

    if name not in RULES:
        raise invalid("optimizer", name, f"one of: {listed(RULES)}, or torch:NAME (torch.optim's own)")
    try:
        return TorchOptimizer(params, name, seed=config.seed, **options)
    except DescentError as error:
        raise _renamed(error, name, options) from None


def make_scheduler(config: TrainConfig, optimizer: torch.optim.Optimizer, steps_per_epoch: int):
    """The scheduler ``config.schedule`` names (None for a constant lr)."""
    kind, values = parse_schedule(config.schedule)
    schedulers = torch.optim.lr_scheduler
    if kind == "step":
        return schedulers.StepLR(optimizer, step_size=int(values[0]), gamma=values[1])
    if kind == "cosine":
        return schedulers.CosineAnnealingLR(optimizer, T_max=config.epochs)
    if kind == "onecycle":
        return schedulers.OneCycleLR(optimizer, max_lr=config.lr, total_steps=config.epochs * steps_per_epoch)
    if kind == "plateau":
        return schedulers.ReduceLROnPlateau(optimizer, factor=0.1, patience=10)
    return None


def batch_indices(n: int, batch_size: int | str, generator: torch.Generator) -> list[torch.Tensor | None]:
    """One epoch's batches: ``[None]`` (all of the data, as stored) for ``"full"``, else
    ``torch.randperm(n, generator)`` cut into consecutive pieces of ``batch_size`` (the last smaller).

    >>> g = torch.Generator().manual_seed(0)
    >>> [len(b) for b in batch_indices(10, 4, g)], batch_indices(10, "full", g)
    ([4, 4, 2], [None])
    """
    if batch_size == "full":
        return [None]
    order = torch.randperm(n, generator=generator)
    return list(order.split(int(batch_size)))


@torch.no_grad()
def evaluate(model: torch.nn.Module, loss, x: torch.Tensor, y: torch.Tensor, task: str):
    """(mean loss, accuracy or None for regression) of ``model`` on ``(x, y)``."""
    outputs = model(x)
    return float(loss(outputs, y)), accuracy(outputs, y) if task == "classification" else None


def step_norms(model: torch.nn.Module, clip: float | None) -> torch.Tensor:
    """The norm of all gradients together, before clipping; clips them to ``clip`` when set."""
    params = [p for p in model.parameters() if p.grad is not None]
    if clip is None:
        return torch.nn.utils.get_total_norm([p.grad for p in params])
    return torch.nn.utils.clip_grad_norm_(params, clip)


@dataclass
class TrainResult:
    """What a run left: the model (as the loop left it), one row of ``METRICS`` per finished epoch,
    the losses before training (``initial``), and whether Ctrl-C stopped it."""

    config: TrainConfig
    data: Dataset
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    metrics: list[dict[str, Any]]
    initial: dict[str, Any]
    interrupted: bool
    out: Path | None
    files: dict[str, Path]
    monitor: Any = None  # the descent.monitor.Monitor that watched the run, if one did

    @property
    def epochs_run(self) -> int:
        return len(self.metrics)

    @property
    def diverged_at(self) -> int | None:
        """The first epoch whose training loss is not finite (the run stopped there), or None."""
        return next((r["epoch"] for r in self.metrics if not math.isfinite(r["train_loss"])), None)


def _flat(model: torch.nn.Module) -> torch.Tensor:
    return torch.nn.utils.parameters_to_vector(model.parameters()).detach()


def current_lr(optimizer: torch.optim.Optimizer) -> float:
    """The rate the first param group steps with now: its ``lr``, or the rate a hypergradient rule
    learned (`descent.optim.TorchOptimizer.rate`)."""
    from descent.optim import TorchOptimizer

    if isinstance(optimizer, TorchOptimizer):
        return optimizer.rate(0)
    return float(optimizer.param_groups[0]["lr"])


def run_epoch(
    model,
    loss,
    optimizer,
    scheduler,
    data: Dataset,
    config: TrainConfig,
    generator,
    after_step: Callable[[torch.Tensor], Any] | None = None,
) -> dict[str, Any]:
    """One pass over the training data; returns the epoch's step metrics (sums over its steps).
    ``after_step(loss)``: called after each optimizer step (the monitor's ``step``)."""
    x, y = data.x_train, data.y_train
    batch_losses, grad_norms = [], []
    examples = 0
    lr = current_lr(optimizer)
    per_step = isinstance(scheduler, torch.optim.lr_scheduler.OneCycleLR)
    start = _flat(model)
    for index in batch_indices(len(x), config.batch_size, generator):
        xb, yb = (x, y) if index is None else (x[index], y[index])
        optimizer.zero_grad(set_to_none=True)
        value = loss(model(xb), yb)
        value.backward()
        grad_norms.append(step_norms(model, config.clip).detach())
        lr = current_lr(optimizer)
        optimizer.step()
        if per_step:
            scheduler.step()
        if after_step is not None:
            after_step(value.detach())
        batch_losses.append(value.detach())
        examples += len(xb)
    norms = torch.stack(grad_norms)
    return {
        "steps": len(batch_losses),
        "examples": examples,
        "batch_loss": float(torch.stack(batch_losses).mean()),
        "grad_norm": float(norms.mean()),
        "clipped_steps": 0 if config.clip is None else int((norms > config.clip).sum()),
        "update_norm": float(torch.linalg.vector_norm(_flat(model) - start)),
        "lr": lr,
    }


def train_along(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    loss,
    x: torch.Tensor,
    y: torch.Tensor,
    order: list[torch.Tensor],
    after_step: Callable[[torch.optim.Optimizer], Any] | None = None,
) -> bool:
    """Step ``optimizer`` once per batch of example indices in ``order`` (any torch optimizer: the
    experiments that compare optimizers on one data order use it); ``after_step(optimizer)`` after each
    step. Returns False, having stopped, at the first batch whose loss is not finite."""
    for index in order:
        optimizer.zero_grad()
        value = loss(model(x[index]), y[index])
        if not torch.isfinite(value):
            return False
        value.backward()
        optimizer.step()
        if after_step is not None:
            after_step(optimizer)
    return True


def config_model(config: TrainConfig, data: Dataset) -> torch.nn.Module:
    """The model ``config`` names for ``data``'s features and outputs: its architecture, activation,
    initialisation, seed, dtype and device."""
    return build_model(
        config.model,
        data.n_features,
        data.n_outputs,
        activation=config.activation,
        init=config.init,
        seed=config.seed,
        dtype=DTYPES[config.dtype],
        device=config.device,
    )


def _setup(config: TrainConfig):
    """Data, model, loss, optimizer, scheduler and the data-order generator of a fresh run."""
    dtype = DTYPES[config.dtype]
    data = load_dataset(
        config.dataset,
        target=config.target,
        test_fraction=config.test_fraction,
        seed=config.seed,
        n=config.n,
        noise=config.noise,
        dtype=dtype,
        device=config.device,
    )
    n_train = len(data.x_train)
    if config.batch_size != "full" and config.batch_size > n_train:
        raise invalid(
            "batch_size", config.batch_size, f"'full' or an integer in [1, {n_train}] (the training set)"
        )
    loss_name = config.loss or ("cross-entropy" if data.task == "classification" else "mse")
    if parse_model(config.model)[0] == "logistic" and data.task != "classification":
        raise invalid("model", config.model, "linear for a regression task (logistic takes classes)")
    loss = loss_function(loss_name, data.task)
    model = config_model(config, data)
    optimizer = make_optimizer(config, model.parameters())
    steps_per_epoch = 1 if config.batch_size == "full" else math.ceil(n_train / int(config.batch_size))
    scheduler = make_scheduler(config, optimizer, steps_per_epoch)
    generator = torch.Generator().manual_seed(config.seed)
    return data, model, loss, optimizer, scheduler, generator


def _epochs_matter(config: TrainConfig) -> bool:
    return parse_schedule(config.schedule)[0] in ("cosine", "onecycle")


def _check_resume(config: TrainConfig, saved: dict[str, Any], path: Path) -> None:
    ours, theirs = config.to_dict(), dict(saved["config"])
    if saved.get("format") != CHECKPOINT_FORMAT:
        raise invalid("resume", str(path), f"a checkpoint of format {CHECKPOINT_FORMAT}")
    for key in ours:
        if key == "epochs" and not _epochs_matter(config):
            continue
        if ours[key] != theirs.get(key):
            why = " (the schedule depends on it)" if key == "epochs" else ""
            raise invalid(key, ours[key], f"{theirs.get(key)!r} as in the run being resumed{why}")
    if saved["epoch"] > config.epochs:
        raise invalid(
            "epochs", config.epochs, f"at least {saved['epoch']}, the epochs the run being resumed finished"
        )


def _csv_line(values: list[Any]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(values)
    return buffer.getvalue()


def _csv_row(row: dict[str, Any]) -> str:
    return _csv_line(["" if row[k] is None else repr(row[k]) for k in METRICS])


def write_metrics(
    out: Path, config: TrainConfig, initial: dict[str, Any], rows: list[dict[str, Any]]
) -> None:
    """``metrics.csv`` (a header, one row per epoch) and ``metrics.json`` (the config, the start and
    the rows), each replaced atomically."""
    atomic_write_text(out / "metrics.csv", _csv_line(list(METRICS)) + "".join(_csv_row(r) for r in rows))
    payload = numbers_out({"config": config.to_dict(), "initial": initial, "epochs": rows})  # strict JSON
    atomic_write_text(out / "metrics.json", json.dumps(payload, indent=1, allow_nan=False) + "\n")


def _evaluate_both(model, loss, data: Dataset) -> dict[str, Any]:
    train_loss, train_accuracy = evaluate(model, loss, data.x_train, data.y_train, data.task)
    test_loss, test_accuracy = evaluate(model, loss, data.x_test, data.y_test, data.task)
    return {
        "train_loss": train_loss,
        "train_accuracy": train_accuracy,
        "test_loss": test_loss,
        "test_accuracy": test_accuracy,
    }


def _restore(out: Path, config: TrainConfig, model, optimizer, scheduler, generator):
    """Load ``out/checkpoint.pt`` into the run's objects; returns (metrics so far, initial)."""
    path = out / "checkpoint.pt"
    saved = load_checkpoint(path)
    _check_resume(config, saved, path)
    model.load_state_dict(saved["model"])
    optimizer.load_state_dict(saved["optimizer"])
    if scheduler is not None:
        scheduler.load_state_dict(saved["scheduler"])
    generator.set_state(saved["generator"])
    return json.loads(saved["metrics"]), json.loads(saved["initial"])


def _checkpoint(
    out: Path, config: TrainConfig, model, optimizer, scheduler, generator, metrics, initial
) -> Path:
    """Everything a resume needs; the metrics as JSON text (one object to pickle, not thousands)."""
    payload = {
        "format": CHECKPOINT_FORMAT,
        "config": config.to_dict(),
        "epoch": len(metrics),
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": None if scheduler is None else scheduler.state_dict(),
        "generator": generator.get_state(),
        "metrics": json.dumps(metrics),
        "initial": json.dumps(initial),
    }
    return save_checkpoint(out / "checkpoint.pt", payload)


def _epoch(
    model, loss, optimizer, scheduler, data, config, generator, previous, after_step=None
) -> dict[str, Any]:
    """One epoch and its row of ``METRICS`` (``previous``: the last row, for the running totals)."""
    start = time.perf_counter()
    steps = run_epoch(model, loss, optimizer, scheduler, data, config, generator, after_step)
    evaluated = _evaluate_both(model, loss, data)
    if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
        scheduler.step(evaluated["train_loss"])
    elif scheduler is not None and not isinstance(scheduler, torch.optim.lr_scheduler.OneCycleLR):
        scheduler.step()
    seconds = time.perf_counter() - start
    return {
        "epoch": previous["epoch"] + 1,
        "steps": previous["steps"] + steps["steps"],
        "examples": previous["examples"] + steps["examples"],
        **evaluated,
        **{k: steps[k] for k in ("batch_loss", "grad_norm", "clipped_steps", "update_norm", "lr")},
        "epoch_seconds": seconds,
        "seconds": previous["seconds"] + seconds,
    }


def train(
    config: TrainConfig,
    out: Path | None = None,
    progress: Callable[[int, int], None] | None = None,
    resume: bool = False,
    plot: bool = True,
    monitor_every: int | None = None,
    on_check: Callable[[str], Any] | None = None,
    tensorboard: Path | str | None = None,
) -> TrainResult:
    """Train as ``config`` says (see the module's docstring). ``out``: the folder for the files (None:
    write nothing); ``progress(epoch, epochs)`` after each epoch; ``resume``: continue the run whose
    ``checkpoint.pt`` is in ``out``; ``plot``: write ``curves.png``.

    ``monitor_every``: watch the run with :func:`descent.monitor.watch` (its held batch: the first
    ``MONITOR_HELD`` training examples), a check every that many steps; ``on_check(line)`` gets its
    summary line at each check, and ``out/monitor/`` its report. The monitor only reads: the run's
    numbers are the same with it (tests/train/test_monitor_train.py). A resumed run's monitor starts
    afresh at the resumed step. ``tensorboard``: a folder for the monitor's TensorBoard log (needs
    ``monitor_every`` and the ``tensorboard`` package: the ``monitor`` extra)."""
    if resume and out is None:
        raise invalid("resume", resume, "an out folder holding the checkpoint.pt of the run to continue")
    if monitor_every is not None and (
        isinstance(monitor_every, bool) or not isinstance(monitor_every, int) or monitor_every < 1
    ):
        raise invalid("monitor", monitor_every, "an integer >= 1 (steps between checks)")
    if tensorboard is not None and monitor_every is None:
        raise invalid("tensorboard", str(tensorboard), "a log folder together with --monitor K")
    if tensorboard is not None:
        from descent.monitor.monitor import tensorboard_available

        tensorboard_available()
    data, model, loss, optimizer, scheduler, generator = _setup(config)
    if resume:
        metrics, initial = _restore(Path(out), config, model, optimizer, scheduler, generator)  # type: ignore[arg-type]
    else:
        metrics, initial = [], _evaluate_both(model, loss, data)
    files: dict[str, Path] = {}
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        files["config"] = atomic_write_text(
            out / "config.json", json.dumps(config.to_dict(), indent=1) + "\n"
        )
        write_metrics(out, config, initial, metrics)
    monitor, after_step = None, None
    if monitor_every is not None:
        from descent.monitor import watch

        held = (data.x_train[:MONITOR_HELD], data.y_train[:MONITOR_HELD])
        monitor = watch(
            model, optimizer, loss, held, every=monitor_every, verbose=False, tensorboard=tensorboard
        )

        def after_step(value: torch.Tensor) -> None:
            if monitor.step(value) is not None and on_check is not None:
                on_check(monitor.line)

    interrupted = False
    try:
        while len(metrics) < config.epochs:
            previous = metrics[-1] if metrics else {"epoch": 0, "steps": 0, "examples": 0, "seconds": 0.0}
            row = _epoch(model, loss, optimizer, scheduler, data, config, generator, previous, after_step)
            metrics.append(row)
            if out is not None:
                files["checkpoint"] = _checkpoint(
                    out, config, model, optimizer, scheduler, generator, metrics, initial
                )
                with (out / "metrics.csv").open("a") as handle:  # one line an epoch; rewritten at the end
                    handle.write(_csv_row(row))
            if progress is not None:
                progress(row["epoch"], config.epochs)
            if not math.isfinite(row["train_loss"]):
                break  # diverged: an outcome, not a crash; further epochs would only carry NaN
    except KeyboardInterrupt:
        interrupted = True
    if out is not None:
        write_metrics(out, config, initial, metrics)
        files["metrics_csv"], files["metrics_json"] = out / "metrics.csv", out / "metrics.json"
        if (out / "checkpoint.pt").exists():
            files["checkpoint"] = out / "checkpoint.pt"
        if plot and metrics:
            files["curves"] = write_curves(out / "curves.png", metrics, initial, run_title(config))
    if monitor is not None:
        monitor.close()
        if out is not None and monitor.rows:
            monitor.report(out / "monitor")
            files["monitor"] = out / "monitor"
    return TrainResult(config, data, model, optimizer, metrics, initial, interrupted, out, files, monitor)


def write_curves(path: Path, metrics: list[dict[str, Any]], initial: dict[str, Any], title: str) -> Path:
    """``curves_figure`` saved as a PNG at 110 dpi."""
    import matplotlib.pyplot as plt

    figure = curves_figure(metrics, initial, title=title)
    try:
        figure.savefig(path, dpi=110)
    finally:
        plt.close(figure)
    return path


def run_title(config: TrainConfig) -> str:
    """One line: data, model, optimizer, lr, batch size."""
    batch = "full batch" if config.batch_size == "full" else f"batch {config.batch_size}"
    return f"{Path(config.dataset).name} · {config.model} · {config.optimizer} lr {config.lr:g} · {batch}"


def curves_figure(metrics: list[dict[str, Any]], initial: dict[str, Any], title: str = ""):
    """Loss, accuracy (classification), gradient and update norms, and lr against epoch (epoch 0:
    the start), on a figure 11 in wide (matplotlib, Agg)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [0] + [row["epoch"] for row in metrics]
    classification = metrics[0]["train_accuracy"] is not None
    panels = 4 if classification else 3
    figure, axes = plt.subplots(1, panels, figsize=(11, 3.2), layout="constrained")
    for part, style in (("train", "-"), ("test", "--")):
        losses = [initial[f"{part}_loss"]] + [row[f"{part}_loss"] for row in metrics]
        axes[0].plot(epochs, losses, style, label=part)
        if classification:
            accuracies = [initial[f"{part}_accuracy"]] + [row[f"{part}_accuracy"] for row in metrics]
            axes[1].plot(epochs, accuracies, style, label=part)
    axes[0].set_yscale("log")
    axes[0].set_title("loss", fontsize=10)
    if classification:
        axes[1].set_title("accuracy", fontsize=10)
    norms = axes[-2]
    norms.plot(epochs[1:], [row["grad_norm"] for row in metrics], label="mean |gradient| (before clip)")
    norms.plot(epochs[1:], [row["update_norm"] for row in metrics], "--", label="|epoch's update|")
    norms.set_yscale("log")
    norms.set_title("norms", fontsize=10)
    axes[-1].plot(epochs[1:], [row["lr"] for row in metrics])
    axes[-1].set_title("learning rate", fontsize=10)
    for ax in axes:
        ax.set_xlabel("epoch", fontsize=9)
        ax.tick_params(labelsize=9)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=9)
    if title:
        figure.suptitle(title, fontsize=10)
    return figure
