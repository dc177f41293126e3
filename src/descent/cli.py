"""The `descent` command line: parsing only; every command calls the packages."""

from __future__ import annotations

import functools
import inspect
import json
import math
import os
import re
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from descent._errors import DescentError, check_number, invalid
from descent.train.cli import train_command

app = typer.Typer(
    help="descent: gradient descent seen as physics.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
list_app = typer.Typer(help="List the registries.", no_args_is_help=True)
experiment_app = typer.Typer(help="Each seed claim as a reproducible experiment.", no_args_is_help=True)
app.add_typer(list_app, name="list")
app.add_typer(experiment_app, name="experiment")
console = Console()


def fail(error: Exception, flags: dict | None = None) -> None:
    """Print ``error`` as one plain line on stderr (no markup, no wrapping) and exit with code 2;
    with ``flags`` (run's arguments), a parameter named inside descent is named as its flag."""
    text = " ".join(str(error).splitlines())
    if flags is not None and isinstance(error, DescentError):
        named = re.match(r"invalid ([\w.:-]+)=", text)
        parameter = error.parameter or (named.group(1) if named else None)
        flag = _flag_name(parameter, flags) if parameter else None
        if flag in ("--start", "--starts") and error.allowed is not None:
            text = str(invalid(flag, flags[flag[2:]], error.allowed))  # the points as typed
        elif flag is not None and text.startswith(f"invalid {parameter}="):
            text = f"invalid {flag}=" + text[len(f"invalid {parameter}=") :]
    formula = "invalid landscape formula "
    if flags is not None and "landscape" in flags and text.startswith(formula):
        text = "invalid --landscape formula " + text[len(formula) :]
    typer.echo("error: " + text, err=True)
    raise typer.Exit(code=2)


# parameters of a run spec (or of its parts) and the `run` flags that set them
_FLAGS = {
    "clip_norm.max_norm": "--clip",
    "grad_noise.sigma": "--grad-noise",
    "l2.l2": "--l2",
    "landscape formula": "--landscape",
    "landscape": "--landscape",
    "save.every": "--save every",
    "schedule kind": "--schedule kind",
    **{name: "--" + name.replace("_", "-") for name in ("optimizer", "save", "steps", "seed", "dtype")},
    **{name: "--" + name.replace("_", "-") for name in ("batch_size", "batch_mode", "backend", "device")},
}


def _flag_name(parameter: str, flags: dict) -> str | None:
    """The flag (as ``run`` spells it) behind a parameter named inside descent, or None."""
    if parameter in _FLAGS:
        return _FLAGS[parameter]
    if parameter == "starts":
        return "--starts" if flags.get("starts") and not flags.get("start") else "--start"
    rule, landscape = flags.get("optimizer"), flags.get("landscape")
    if parameter in (f"{rule} hyper-parameter", f"{rule} option"):
        return "--hp"
    if parameter == f"{landscape} parameter":
        return "--param"
    head, dot, tail = parameter.partition(".")
    if dot and head == rule:
        return f"--{tail}" if tail in ("lr", "momentum", "temperature") else f"--hp {tail}"
    if dot and head == landscape:
        return f"--param {tail}"
    if dot and flags.get("schedule") and head in flags["schedule"]:
        return f"--schedule {parameter}"
    return None


def interruptible(command):
    """Ctrl-C stops ``command`` with exit code 130 and one line, keeping what it wrote so far."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except KeyboardInterrupt:
            typer.echo("interrupted: what finished was kept", err=True)
            raise typer.Exit(code=130) from None

    return wrapper


def progress_bar(description: str) -> Progress:
    """A rich progress bar (shown on long work; quiet when not a terminal)."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    )


def bar_callback(bar: Progress, task: int):
    """A ``progress(k, total)`` callback that advances ``task`` on ``bar``."""
    return lambda k, total: bar.update(task, completed=k, total=total)


def parse_point(text: str, parameter: str = "--start") -> list[float]:
    """'-1.7,0' -> [-1.7, 0.0]."""
    try:
        point = [float(v) for v in text.split(",")]
    except ValueError:
        point = []
    if not point or not all(math.isfinite(v) for v in point):
        raise invalid(parameter, text, "comma-separated finite numbers, e.g. -1.7,0")
    return point


def parse_starts(text: str | None, parameter: str = "--start") -> object:
    if text is None or text == "default":
        return "default"
    if text.startswith(("random:", "grid:", "default:")):
        return text
    points = []
    for part in text.split(";"):
        try:
            points.append(parse_point(part, parameter))
        except DescentError as error:
            raise invalid(parameter, text, error.allowed + " (points separated by ';')") from None
    return points


def parse_params(items: list[str], parameter: str) -> dict[str, float]:
    """['kappa=100', 'angle=0.5'] -> {'kappa': 100.0, 'angle': 0.5}."""
    out: dict[str, float] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise invalid(parameter, item, "key=value")
        out[key.strip()] = check_number(f"{parameter} {key.strip()}", value)
    return out


def parse_bytes(text: str | None, parameter: str = "--memory-budget") -> int | None:
    """'2GB', '512MB', '1.5e9' -> bytes."""
    if text is None:
        return None
    units = {"TB": 1024**4, "GB": 1024**3, "MB": 1024**2, "KB": 1024, "B": 1}
    clean = text.strip().upper()
    for unit, factor in units.items():
        if clean.endswith(unit):
            number = check_number(parameter, clean[: -len(unit)].strip() or "x", 0.0, None, low_open=True)
            return int(number * factor)
    return int(check_number(parameter, clean, 0.0, None, low_open=True))


@app.command()
@interruptible
def run(
    landscape: str = typer.Option(
        "double-well",
        help="registered name (see `descent list landscapes`) "
        'or a formula in x and y, e.g. "x**2 + 3*sin(y)"',
    ),
    optimizer: str = typer.Option("momentum", help="update rule (see `descent list optimizers`)"),
    lr: float | None = typer.Option(
        None, help="learning rate \\[default: the landscape's; adaptive rules: 1/80 of the box]"
    ),
    momentum: float | None = typer.Option(None, help="momentum beta (momentum, nesterov, rmsprop)"),
    temperature: float | None = typer.Option(None, help="Langevin temperature T"),
    hp: list[str] = typer.Option([], "--hp", help="other hyper-parameters, key=value (repeatable)"),
    param: list[str] = typer.Option([], "--param", help="landscape parameters, key=value (repeatable)"),
    schedule: str | None = typer.Option(
        None, help="lr schedule, e.g. 'cosine:total=2000' or 'warmup:steps=100>cosine:total=1900'"
    ),
    grad_noise: float = typer.Option(0.0, help="std of Gaussian noise added to each gradient"),
    clip: float | None = typer.Option(None, help="clip each particle's gradient norm to this"),
    l2: float = typer.Option(0.0, help="coupled weight decay: g + l2*w"),
    start: str | None = typer.Option(
        None,
        help="x,y start; 'random:N', 'grid:K' or 'default:N' for swarms; several points separated by ';'",
    ),
    starts: str | None = typer.Option(None, help="alias of --start"),
    steps: int = typer.Option(2000, help="maximum number of steps"),
    save: str = typer.Option(
        "every:1", help="what to keep: 'every:K' steps, 'steps:K1,K2,...' or 'summary' (start, end, events)"
    ),
    record_every: int | None = typer.Option(None, help="old form of --save every:K (0: --save summary)"),
    grad_tol: float | None = typer.Option(
        None, help="converged when |grad| < this (and the last step too); stops the particle"
    ),
    target_loss: float | None = typer.Option(None, help="stop a particle when loss <= this"),
    batch_size: int | None = typer.Option(None, help="mini-batch size (objectives with data)"),
    batch_mode: str = typer.Option("replacement", help="replacement, without or epoch"),
    seed: int = typer.Option(0, help="random seed (noise, random starts, mini-batches)"),
    dtype: str = typer.Option("float64", help="float64 or float32"),
    device: str = typer.Option("cpu", help="cpu or cuda"),
    backend: str = typer.Option(
        "auto",
        help="auto (default: the compiled kernel where it supports the run, else torch), kernel, torch",
    ),
    memory_budget: str | None = typer.Option(
        None,
        help="refuse runs that would hold more than this, e.g. 2GB \\[default: half the machine's memory]",
    ),
    spec_file: Path | None = typer.Option(
        None, "--spec", help="replay a stored spec (a spec .json or a trajectory.json); other flags ignored"
    ),
    out: Path | None = typer.Option(
        None,
        help="folder for trajectory.json/.csv/.png "
        "\\[default: out/<first 8 characters of the spec's digest>]",
    ),
    max_file_size: str = typer.Option(
        "50MB", help="decimate trajectory.json and .csv (even frames and particles) to stay under this"
    ),
    no_plot: bool = typer.Option(False, "--no-plot", help="skip trajectory.png"),
) -> None:
    """Simulate an optimizer on a landscape; write trajectory.json, trajectory.csv, trajectory.png."""
    from descent.spec import RunSpec, run_spec

    flags = dict(locals())  # the arguments by name
    try:
        budget = parse_bytes(memory_budget)
        file_limit = parse_bytes(max_file_size, "--max-file-size")
        if spec_file is not None:
            given = [flag for flag, default in SPEC_FLAGS.items() if flags[flag] != default]
            if given:
                option = "--" + given[0].replace("_", "-")
                raise invalid(
                    option,
                    flags[given[0]],
                    "no other run settings with --spec (a stored spec "
                    "replays as it is: edit the spec file, or run without --spec)",
                )
            if not spec_file.is_file():
                raise invalid("--spec", str(spec_file), "an existing spec or trajectory.json file")
            try:
                spec = RunSpec.from_json(spec_file.read_text())
            except (DescentError, UnicodeDecodeError) as error:  # named by its file, not its contents
                reason = getattr(error, "allowed", None) or "a RunSpec or trajectory.json from descent"
                raise invalid("--spec", str(spec_file), reason) from None
        else:
            spec = _with_learned_rate(_spec_from_flags(flags))
            spec = spec.with_(device=device, backend=backend)
        check_resources(spec)
        if out is None:  # each run its own folder, named by what it runs
            out = Path("out") / spec.digest[:8]
        check_out_folder(out)
        with progress_bar("simulating") as bar:
            task = bar.add_task("simulating", total=spec.steps)
            trajectory = run_spec(spec, progress=bar_callback(bar, task), memory_budget=budget)
    except DescentError as error:
        fail(error, flags if spec_file is None else None)
        return
    try:
        out.mkdir(parents=True, exist_ok=True)
        with progress_bar("writing") as bar:
            task = bar.add_task(f"writing {out}", total=2 if no_plot else 3)
            paths = [trajectory.write_json(out / "trajectory.json", max_bytes=file_limit)]
            bar.advance(task)
            paths.append(trajectory.write_csv(out / "trajectory.csv", max_bytes=file_limit))
            bar.advance(task)
            if not no_plot:
                from descent.plots import trajectory_figure

                figure = trajectory_figure(trajectory)
                figure.savefig(out / "trajectory.png", dpi=110)
                paths.append(out / "trajectory.png")
                bar.advance(task)
    except OSError as error:  # what the check before the run could not foresee (a full disk, /proc)
        fail(invalid("--out", str(out), f"a folder the files can be written to ({error.strerror})"))
    _print_summary(trajectory, paths)
    if trajectory.interrupted:
        raise typer.Exit(code=130)  # interrupted (Ctrl-C): what finished was written


MAX_DIM = 10_000  # the largest dimension the command line runs (`--param dim=...`)


def check_resources(spec) -> None:
    """Refuse a device or a dimension the run cannot have, before any work (the particles and the
    memory they need are checked by ``run_spec`` before any start is made)."""
    if not re.fullmatch(r"cpu|cuda(:\d+)?", spec.device):
        raise invalid("device", spec.device, "cpu, cuda or cuda:N")
    if spec.device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise invalid("device", spec.device, "'cpu' (no CUDA device is available here)")
        index = int(spec.device.partition(":")[2] or 0)
        if index >= torch.cuda.device_count():
            raise invalid("device", spec.device, f"cuda:0 to cuda:{torch.cuda.device_count() - 1}")
    dim = spec.landscape_params.get("dim")
    if dim is not None and not 1 <= dim <= MAX_DIM:
        raise invalid(f"{spec.landscape}.dim", dim, f"an integer in [1, {MAX_DIM}]")


def check_out_folder(out: Path, typed: Path | None = None) -> None:
    """Refuse an output folder that is a file, lies under a file or cannot be written, before any
    work (nothing is created here); ``typed``: the --out the user gave, when ``out`` is its folder."""
    shown = str(typed or out)
    for folder in [out, *out.absolute().parents]:
        if folder.exists():
            if not folder.is_dir():
                raise invalid("--out", shown, f"a path in a folder ({folder} is a file)")
            if not os.access(folder, os.W_OK | os.X_OK):
                raise invalid("--out", shown, f"a folder you can write to ({folder} is not writable)")
            return


# the run flags that shape a spec, with their defaults read from `run` itself (given together with
# --spec, they are refused); the others only say where and how to write
NOT_SPEC_FLAGS = ("memory_budget", "spec_file", "out", "max_file_size", "no_plot")
SPEC_FLAGS = {
    name: parameter.default.default
    for name, parameter in inspect.signature(run).parameters.items()
    if name not in NOT_SPEC_FLAGS
}


def _spec_from_flags(flags: dict):
    """The RunSpec the `run` flags describe (``flags``: run's arguments by name; RunSpec validates)."""
    from descent.optim import parse_schedule, schedule_to_dict
    from descent.spec import RunSpec

    hp, param, schedule, save = flags["hp"], flags["param"], flags["schedule"], flags["save"]
    record_every, grad_tol, target_loss = flags["record_every"], flags["grad_tol"], flags["target_loss"]
    grad_noise, clip, l2 = flags["grad_noise"], flags["clip"], flags["l2"]

    if flags["start"] is not None and flags["starts"] is not None:
        raise invalid("--starts", flags["starts"], "one of --start and --starts, not both (aliases)")
    hyper = parse_params(hp, "--hp")
    for key in ("lr", "momentum", "temperature"):
        if flags[key] is not None:
            hyper[key] = flags[key]
    if record_every is not None:
        if record_every < 0:
            raise invalid("--record-every", record_every, "an integer >= 0 (0: --save summary)")
        save = "summary" if record_every == 0 else f"every:{record_every}"
    events: dict = {}
    stop_on = []
    if grad_tol is not None:
        events["grad_tol"] = check_number("--grad-tol", grad_tol, 0.0, None, low_open=True)
        stop_on.append("converged")
    if target_loss is not None:
        events["target_loss"] = check_number("--target-loss", target_loss)
        stop_on.append("target")
    if stop_on:
        events["stop_on"] = stop_on
    transforms = []
    if grad_noise:
        transforms.append({"kind": "grad_noise", "sigma": grad_noise})
    if clip is not None:
        transforms.append({"kind": "clip_norm", "max_norm": clip})
    if l2:
        transforms.append({"kind": "l2", "l2": l2})
    return RunSpec(
        landscape=flags["landscape"],
        landscape_params=parse_params(param, "--param"),
        optimizer=flags["optimizer"],
        hyper=hyper,
        schedule=schedule_to_dict(parse_schedule(schedule)) if schedule else None,
        transforms=transforms,
        starts=parse_starts(flags["start"] or flags["starts"], "--start" if flags["start"] else "--starts"),
        steps=flags["steps"],
        save=save,
        events=events,
        batch_size=flags["batch_size"],
        batch_mode=flags["batch_mode"],
        seed=flags["seed"],
        dtype=flags["dtype"],
    )


def _with_learned_rate(spec):
    """A rule that learns its rate gets the ``learned_rate`` probe at every saved frame (at the start
    and the end for ``--save summary``), so the rate it learned is in the files and the summary."""
    from descent.optim import get_rule

    if not get_rule(spec.optimizer).per_model:
        return spec
    save = spec.save_at()
    every = save.every if save.every is not None else max(spec.steps, 1)
    return spec.with_(probes=[*spec.probes, {"name": "learned_rate", "every": every}])


def _settings_text(settings: dict) -> str:
    """{'kind': 'warmup', 'steps': 100, 'then': {...}} -> 'warmup:steps=100>cosine:total=1900,final=0.0'."""
    then = settings.get("then")
    values = ",".join(f"{k}={v}" for k, v in settings.items() if k not in ("kind", "then"))
    text = settings["kind"] + (f":{values}" if values else "")
    return text + (">" + _settings_text(then) if isinstance(then, dict) else "")


def run_header(trajectory) -> str:
    """One line: landscape, rule and hyper-parameters, and the schedule, clipping, noise and decay
    when set (plain text, no markup)."""
    settings = trajectory.optimizer.to_dict()
    hyper = ", ".join(
        f"{k}={v if not isinstance(v, list) else '[...]'}" for k, v in settings["hyper"].items()
    )
    parts = [f"{trajectory.landscape.name} · {settings['name']} ({hyper})"]
    if settings.get("schedule") and settings["schedule"].get("kind") != "constant":
        parts.append(f"schedule {_settings_text(settings['schedule'])}")
    names = {"clip_norm": "clip", "grad_noise": "grad noise", "l2": "l2"}
    for transform in settings.get("transforms") or []:
        values = ", ".join(str(v) for k, v in transform.items() if k != "kind")
        parts.append(f"{names.get(transform['kind'], transform['kind'])} {values}")
    return " · ".join(parts)


def outcome_name(label: str, landscape) -> str:
    """'minimum:left' -> 'minimum:left (local)' (or '(global)'), from the landscape's known points."""
    kind, _, point = label.partition(":")
    if kind == "minimum":
        for known in getattr(landscape, "critical_points", ()):
            scope = known.kind.removesuffix("_min")
            if known.id == point and known.kind in ("global_min", "local_min") and scope not in point:
                return f"{label} ({scope})"
    return label


#: a position with more coordinates than this (a network's weights) is summarised, not printed
MAX_PRINTED_COORDINATES = 10


def position_text(position, style: str = ".4f") -> str:
    """'(x, y)' with each coordinate in ``style`` (1e308 as 1e+308), or, for a network's thousands of
    weights, how many there are and their norm."""
    if position.numel() > MAX_PRINTED_COORDINATES:
        return f"({position.numel()} coordinates, |w| = {float(position.norm()):.4g})"
    values = position.tolist()
    return "(" + ", ".join(f"{v:{style}}" if abs(v) < 1e6 else f"{v:.4g}" for v in values) + ")"


def _print_summary(trajectory, paths) -> None:
    summary = trajectory.summary()
    console.print(run_header(trajectory), markup=False, style="bold", soft_wrap=True)
    n = summary["particles"]
    if n == 1:
        pos = position_text(trajectory.final_position[0])
        outcome = trajectory.outcomes[0]
        when = "not settled" if outcome == "moving" else f"reached at step {int(trajectory.outcome_step[0])}"
        console.print(
            f"outcome: {outcome_name(outcome, trajectory.landscape)}, {when}; final position {pos}; "
            f"final loss {float(trajectory.final_loss[0]):.6g}",
            markup=False,
            soft_wrap=True,
        )
    else:
        table = Table("outcome", "particles", "share")  # every particle, whatever the files kept
        for label, count in sorted(summary["outcomes"].items(), key=lambda kv: -kv[1]):
            table.add_row(Text(outcome_name(label, trajectory.landscape)), str(count), f"{count / n:.1%}")
        console.print(table)
        console.print(f"median final loss {summary['final_loss_median']:.6g}")
    console.print(f"steps run: {summary['steps_run']}" + (" (interrupted)" if summary["interrupted"] else ""))
    learned = trajectory.probes.get("learned_rate")
    if learned is not None and int(learned["steps"][-1]) > 0:
        end = float(learned["rate"][-1].median())
        where = "" if n == 1 else " (median over the particles)"
        console.print(f"learned rate at step {int(learned['steps'][-1])}: {end:.4g}{where}")
    console.print(backend_line(trajectory))
    for path in paths:
        console.print(f"wrote {path}")


def backend_line(trajectory) -> str:
    """One line: the backend that ran and, when ``auto`` fell back to torch, why."""
    line = f"backend: {trajectory.backend}"
    if trajectory.fallback:
        line += f" (auto fell back: {trajectory.fallback})"
    elif trajectory.compile_seconds is not None:
        line += f" (compiled or loaded from the disk cache in {trajectory.compile_seconds:.2f} s)"
    return line


@list_app.command("landscapes")
def list_landscapes(as_json: bool = typer.Option(False, "--json", help="machine-readable output")) -> None:
    """Registered landscapes with their parameters and defaults."""
    import torch

    from descent.landscapes import LANDSCAPES, landscape_names

    rows = []
    for name in landscape_names():
        entry = LANDSCAPES[name]
        row = {"name": name, "category": entry.category, "params": entry.defaults, "summary": entry.summary}
        if entry.quick_to_build():
            land = entry.build()
            row.update(dim=land.dim, default_lr=land.default_lr, start=list(land.start()[0].tolist()))
        else:  # trained at first use: listed without building it (null: known once built)
            row.update(dim=None, default_lr=None, start=None)
        rows.append(row)
    if as_json:
        console.print_json(json.dumps(rows))
        return
    table = Table("name", "kind", "parameters (defaults)", "default lr", "start", "description")
    for r in rows:
        params = ", ".join(f"{k}={v:g}" for k, v in r["params"].items())
        start = "at first use" if r["start"] is None else position_text(torch.tensor(r["start"]), "g")
        lr = "at first use" if r["default_lr"] is None else f"{r['default_lr']:g}"
        table.add_row(r["name"], r["category"], params, lr, start, r["summary"])
    console.print(table)


@list_app.command("optimizers")
def list_optimizers(as_json: bool = typer.Option(False, "--json", help="machine-readable output")) -> None:
    """Registered update rules with their hyper-parameters, defaults and allowed ranges."""
    from descent.optim import RULES

    if as_json:
        console.print_json(
            json.dumps(
                [
                    {
                        "name": r.name,
                        "math": r.math,
                        "torch": r.torch_name,
                        "hyper": {h.name: h.default for h in r.hyperparams},
                    }
                    for r in RULES.values()
                ]
            )
        )
        return
    table = Table("name", "hyper-parameters (default; allowed)", "update", "torch.optim")
    for rule in RULES.values():
        hps = "\n".join(f"{h.name}={h.default:g}; {h.allowed()}" for h in rule.hyperparams)
        table.add_row(rule.name, hps, rule.math, rule.torch_name or "-")
    console.print(table)
    console.print("any rule also takes: --grad-noise SIGMA, --clip NORM, --l2 DECAY, --schedule SPEC")


@app.command()
@interruptible
def arena(
    host: str = typer.Option("127.0.0.1", help="interface to serve on (loopback by default)"),
    port: int = typer.Option(8050, help="port"),
    debug: bool = typer.Option(
        False, help="Flask's development server in Dash debug mode (reloader, debugger) instead of waitress"
    ),
    threads: int = typer.Option(
        2, min=1, max=64, help="waitress worker threads (one process; each request runs on one of them)"
    ),
) -> None:
    """Serve the Descent Arena, the interactive page, through waitress (a production WSGI server: one
    process, 2 worker threads unless --threads says otherwise); --debug uses Flask's development server."""
    if not 1 <= port <= 65535:
        fail(invalid("--port", port, "an integer in [1, 65535]"))
    from descent.arena import serve

    try:
        serve(host=host, port=port, debug=debug, threads=threads, announce=console.print)
    except OSError as error:  # the port is taken, the host is not this machine's, no permission
        fail(
            invalid(
                "--port", port, f"a port this machine lets us serve on at {host} ({error.strerror or error})"
            )
        )


@experiment_app.command("list")
def experiment_list() -> None:
    """The experiments and the seed claim each one checks."""
    from descent.experiments import EXPERIMENT_NAMES, get_experiment

    table = Table("name", "claim")
    for name in EXPERIMENT_NAMES:
        table.add_row(name, get_experiment(name).CLAIM)
    console.print(table)


@experiment_app.command("run")
@interruptible
def experiment_run(
    name: str = typer.Argument(..., help="an experiment name, or 'all'"),
    quick: bool = typer.Option(False, help="the small size the tests run"),
    out: Path = typer.Option(Path("out/experiments"), help="folder for NAME.json and NAME.png"),
) -> None:
    """Run one experiment (or all): numbers, theory, verdict, figure."""
    from descent.experiments import EXPERIMENT_NAMES, run_experiment
    from descent.experiments._base import result_lines

    names = list(EXPERIMENT_NAMES) if name == "all" else [name]
    try:
        check_out_folder(out)
        for each in names:
            with progress_bar(each) as bar:
                task = bar.add_task(each, total=None)
                result = run_experiment(each, quick=quick, progress=bar_callback(bar, task))
            paths = result.save(out)
            colour = {"held": "green", "did not hold": "red"}.get(result.verdict, "yellow")
            console.print(f"[bold]{each}[/]: [{colour}]{result.verdict}[/] — {result.explanation}")
            for line in result_lines(result):
                console.print(f"  {line}", markup=False)
            console.print(f"  wrote {', '.join(str(p) for p in paths.values())}")
    except DescentError as error:
        fail(error)


@app.command()
@interruptible
def report(
    out: Path = typer.Option(
        Path("out/report"), help="the folder to write report.html and each experiment's JSON and PNG into"
    ),
    quick: bool = typer.Option(False, help="run every experiment at its quick size"),
) -> None:
    """Run every experiment and gather them into one self-contained HTML page (in --out, beside each
    experiment's JSON and PNG)."""
    from descent.experiments.report import build_report

    try:
        check_out_folder(out)
    except DescentError as error:
        fail(error)
    with progress_bar("report") as bar:
        task = bar.add_task("experiments", total=None)
        path = build_report(out, quick=quick, progress=bar_callback(bar, task))
    console.print(f"wrote {path}", markup=False)


app.command("train")(interruptible(train_command))


def _is_usage_error(error: Exception) -> bool:
    """Click's UsageError (Typer vendors Click, so matched by its class names, not imported)."""
    return any(cls.__name__ == "UsageError" for cls in type(error).__mro__)


def main(argv: list[str] | None = None) -> None:
    """The ``descent`` command. Click's own usage errors (an unknown option, a value of the wrong type,
    a missing argument) come out like descent's: one plain line on stderr, exit code 2; Ctrl-C between
    commands' own handlers exits 130 with one line."""
    command = typer.main.get_command(app)
    try:
        code = command.main(args=argv, prog_name="descent", standalone_mode=False)
    except (typer.Abort, KeyboardInterrupt):
        typer.echo("interrupted", err=True)
        sys.exit(130)
    except Exception as error:
        if not _is_usage_error(error):
            raise
        if type(error).__name__ == "NoArgsIsHelpError":  # a bare group: its help, as Click shows it
            typer.echo(error.format_message())  # type: ignore[attr-defined]
            sys.exit(0)
        ctx = getattr(error, "ctx", None)
        where = ctx.command_path if ctx is not None else "descent"
        message = " ".join(error.format_message().split())  # type: ignore[attr-defined]
        typer.echo(f"error: {message} (see '{where} --help')", err=True)
        sys.exit(2)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
