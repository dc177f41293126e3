"""`descent train`: train a network on a dataset and write its metrics, curves and checkpoints.

The command parses flags into a :class:`~descent.train.loop.TrainConfig` and calls
:func:`~descent.train.loop.train`; a bad value is one line naming its flag (exit code 2), Ctrl-C
keeps the last finished epoch's checkpoint and prints the command that resumes it (exit code 130).

>>> parse_hyper(["betas=0.9,0.99", "amsgrad=true", "eps=1e-8"])
{'betas': (0.9, 0.99), 'amsgrad': True, 'eps': 1e-08}
>>> parse_batch_size("full"), parse_batch_size("32")
('full', 32)
"""

from __future__ import annotations

import hashlib
import json
import shlex
from pathlib import Path
from typing import Any

import typer

from descent._errors import DescentError, invalid

# the TrainConfig fields whose flag is not "--" + the field's name with dashes
_FLAGS = {"hyper": "--hp"}
_FILES = ("config", "metrics_csv", "metrics_json", "checkpoint", "curves", "monitor")


def flag_of(field: str) -> str:
    """The flag that sets a TrainConfig field (``batch_size`` -> ``--batch-size``)."""
    return _FLAGS.get(field, "--" + field.replace("_", "-"))


def as_flag_error(error: DescentError) -> DescentError:
    """``invalid batch_size=0: ...`` -> ``invalid --batch-size=0: ...`` for a parameter that is a
    TrainConfig field (or a dataset's, a model's); other errors (a CSV's row) stay as they are."""
    from dataclasses import fields

    from descent.train.loop import TrainConfig

    names = {f.name for f in fields(TrainConfig)} | {"resume", "monitor", "tensorboard"}  # train()'s own
    parameter = error.parameter
    if parameter not in names:
        return error
    text = str(error)
    head = f"invalid {parameter}="
    if not text.startswith(head):
        return error
    renamed = DescentError(
        f"invalid {flag_of(parameter)}=" + text[len(head) :],
        parameter=flag_of(parameter),
        value=error.value,
        allowed=error.allowed,
    )
    return renamed


def parse_batch_size(text: str) -> int | str:
    """``"full"`` stays; a whole number becomes an int (checked by TrainConfig)."""
    if text == "full":
        return text
    try:
        return int(text)
    except ValueError:
        raise invalid("--batch-size", text, "'full' (batch GD), 1 (SGD) or an integer >= 2") from None


def _value(text: str) -> Any:
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    numbers = [float(part) for part in text.split(",")]  # ValueError for text
    return numbers[0] if len(numbers) == 1 else tuple(numbers)


def parse_hyper(items: list[str]) -> dict[str, Any]:
    """``--hp key=value`` items: a number, numbers separated by commas (a tuple) or true/false."""
    hyper: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        try:
            if not sep or not key.strip():
                raise ValueError
            hyper[key.strip()] = _value(text)
        except ValueError:
            raise invalid(
                "--hp", item, "key=value with a number, numbers separated by commas, or true/false"
            ) from None
    return hyper


def default_out(config) -> Path:
    """``out/train-<first 8 hex digits of the config's SHA-256>``: the same flags, the same folder."""
    digest = hashlib.sha256(json.dumps(config.to_dict(), sort_keys=True).encode()).hexdigest()
    return Path("out") / f"train-{digest[:8]}"


def command_line(config, out: Path) -> str:
    """The `descent train` command for ``config`` (its fields that differ from the defaults) into ``out``."""
    from dataclasses import fields

    from descent.train.loop import TrainConfig

    default = TrainConfig()
    words = ["descent", "train"]
    for f in fields(TrainConfig):
        value = getattr(config, f.name)
        if value == getattr(default, f.name):
            continue
        if f.name == "hyper":
            for key, item in value.items():
                text = (
                    ",".join(str(v) for v in item) if isinstance(item, (tuple, list)) else str(item).lower()
                )
                words += ["--hp", f"{key}={text}"]
        else:
            words += [flag_of(f.name), str(value)]
    return shlex.join([*words, "--out", str(out)])


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f} %"


def summary_lines(result, seconds: float) -> list[str]:
    """The one-screen summary: the run, its final losses and accuracies, clipping, time, files."""
    from descent.train.loop import run_title

    config, rows = result.config, result.metrics
    lines = [run_title(config)]
    if not rows:
        return [*lines, "no epoch finished"]
    last = rows[-1]
    steps, clipped = last["steps"], sum(row["clipped_steps"] for row in rows)
    lines.append(
        f"epochs {last['epoch']} of {config.epochs} ({steps} steps); training {last['seconds']:.1f} s, "
        f"this command {seconds:.1f} s"
    )
    lines.append(f"{'':6} {'loss':>12} {'accuracy':>10}")
    for part in ("train", "test"):
        lines.append(f"{part:6} {last[f'{part}_loss']:>12.6g} {_percent(last[f'{part}_accuracy']):>10}")
    if result.diverged_at is not None:
        lines.append(
            f"diverged: the training loss is not finite after epoch {result.diverged_at}, so the run "
            "stopped there (try a smaller --lr, or --clip)"
        )
    start = result.initial["train_loss"]
    lines.append(f"training loss {start:.4g} -> {last['train_loss']:.4g}; lr at the end {last['lr']:.4g}")
    clip = f"--clip {config.clip:g}" if config.clip is not None else "no --clip"
    lines.append(
        f"clipped steps: {clipped} of {steps} ({clip}); mean |gradient| last epoch {last['grad_norm']:.4g}"
    )
    if result.monitor is not None and result.monitor.diagnosis is not None:
        lines.append(f"monitor ({len(result.monitor.rows)} checks): {result.monitor.diagnosis.message}")
    elif result.monitor is not None:
        lines.append(
            f"monitor: no check ran (--monitor {result.monitor.every} is more than the run's {steps} steps)"
        )
    if result.out is not None:
        names = ", ".join(result.files[key].name for key in _FILES if key in result.files)
        lines.append(f"wrote {result.out}: {names}")
    return lines


def train_command(
    dataset: str = typer.Option(
        "digits",
        help="digits, iris, wine, breast-cancer, moons, circles, spirals, "
        "linear, or a FILE.csv (with --target)",
    ),
    target: str | None = typer.Option(None, help="the target column of a .csv dataset"),
    test_fraction: float = typer.Option(0.2, help="share of the examples held out for testing (stratified)"),
    n: int | None = typer.Option(
        None, "--n", help="use the first N examples (a synthetic dataset: draw N) \\[default: all; 500]"
    ),
    noise: float | None = typer.Option(None, help="a synthetic dataset's noise level \\[default: its own]"),
    model: str = typer.Option(
        "mlp:64,64", help="mlp:WIDTHS (e.g. mlp:64,64), linear, logistic or cnn (8x8 digits)"
    ),
    activation: str = typer.Option("relu", help="relu, tanh, sigmoid or gelu"),
    init: str = typer.Option(
        "default", help="default (torch's), xavier, he or normal:SIGMA (N(0, SIGMA^2/fan_in))"
    ),
    loss: str | None = typer.Option(
        None, help="cross-entropy or mse \\[default: cross-entropy; regression: mse]"
    ),
    optimizer: str = typer.Option(
        "momentum",
        help="a descent rule (`descent list optimizers`) or torch:NAME (torch:SGD, torch:Adam, ...)",
    ),
    lr: float = typer.Option(0.1, help="learning rate"),
    momentum: float | None = typer.Option(None, help="momentum beta \\[default: the optimizer's]"),
    weight_decay: float = typer.Option(0.0, help="weight decay (coupled L2; adamw/AdamW: decoupled)"),
    hp: list[str] = typer.Option(
        [], "--hp", help="other optimizer options, key=value (repeatable), e.g. betas=0.9,0.99"
    ),
    batch_size: str = typer.Option("32", help="full (batch GD), 1 (SGD) or B (mini-batches of B)"),
    epochs: int = typer.Option(20, help="passes over the training set"),
    clip: float | None = typer.Option(
        None, help="clip the gradient's norm (all parameters together) to this"
    ),
    schedule: str | None = typer.Option(
        None, help="lr schedule: step:EPOCHS:GAMMA, cosine, onecycle or plateau"
    ),
    seed: int = typer.Option(0, help="seed of the split, the initialisation and the data order"),
    dtype: str = typer.Option("float64", help="float64 or float32"),
    device: str = typer.Option("cpu", help="cpu, cuda or cuda:N"),
    out: Path | None = typer.Option(
        None, help="folder for the files \\[default: out/train-<digest of the settings>]"
    ),
    resume: bool = typer.Option(False, "--resume", help="continue the interrupted run in --out, bit for bit"),
    no_plot: bool = typer.Option(False, "--no-plot", help="skip curves.png"),
    monitor: int | None = typer.Option(
        None,
        "--monitor",
        help="watch the physics every K steps (descent.monitor): a line per check above the bar, "
        "the diagnosis at the end, a report in OUT/monitor",
    ),
    tensorboard: Path | None = typer.Option(
        None,
        help="with --monitor: also log each check to this TensorBoard folder "
        "(pip install tensorboard, or the descent[monitor] extra)",
    ),
) -> None:
    """Train a network (batch GD, SGD or mini-batches); write metrics.csv/.json, curves.png and a
    checkpoint every epoch."""
    import time

    from descent import cli
    from descent.train.loop import TrainConfig, train

    try:
        config = TrainConfig(
            dataset=dataset,
            target=target,
            test_fraction=test_fraction,
            n=n,
            noise=noise,
            model=model,
            activation=activation,
            init=init,
            loss=loss,
            optimizer=optimizer,
            lr=lr,
            momentum=momentum,
            weight_decay=weight_decay,
            hyper=parse_hyper(hp),
            batch_size=parse_batch_size(batch_size),
            epochs=epochs,
            clip=clip,
            schedule=schedule,
            seed=seed,
            dtype=dtype,
            device=device,
        )
        folder = default_out(config) if out is None else out
        cli.check_out_folder(folder)
        start = time.perf_counter()
        with cli.progress_bar("training") as bar:
            task = bar.add_task("epochs", total=epochs)
            result = train(
                config,
                folder,
                progress=cli.bar_callback(bar, task),
                resume=resume,
                plot=not no_plot,
                monitor_every=monitor,
                tensorboard=tensorboard,
                on_check=lambda line: bar.console.print(line, markup=False, highlight=False, soft_wrap=True),
            )
        seconds = time.perf_counter() - start
    except DescentError as error:
        cli.fail(as_flag_error(error))
        return
    for line in summary_lines(result, seconds):
        cli.console.print(line, markup=False, highlight=False, soft_wrap=True)
    if result.interrupted:
        done = len(result.metrics)
        typer.echo(f"interrupted after epoch {done} of {config.epochs}: the checkpoint keeps it", err=True)
        typer.echo(f"resume with: {command_line(config, folder)} --resume", err=True)
        raise typer.Exit(code=130)
