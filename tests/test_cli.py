"""The `descent` command line, driven as a user would (Typer's runner, plus one real subprocess)."""

import json
import subprocess
import sys

import pytest
import torch
from typer.testing import CliRunner

from descent.cli import app

torch.set_num_threads(1)
runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


@pytest.mark.parametrize(
    "momentum, outcome, kind, side",
    [("0", "minimum:left", "local", -1), ("0.9", "minimum:right", "global", 1)],
)
def test_double_well_momentum_claim_with_every_other_flag_at_its_default(
    tmp_path, momentum, outcome, kind, side
):
    result = invoke("run", "--landscape", "double-well", "--momentum", momentum, "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert f"outcome: {outcome} ({kind}), reached at step" in result.output
    data = json.loads((tmp_path / "trajectory.json").read_text())
    particles = data["particles"]
    assert data["outcome_labels"][particles["outcome"][0]] == outcome
    assert side * particles["final"][0][0] > 0.9
    assert data["spec"]["hyper"] == {"momentum": float(momentum)}
    assert data["optimizer"]["hyper"]["lr"] == 0.02  # the landscape's default learning rate
    assert (tmp_path / "trajectory.csv").stat().st_size > 0
    assert (tmp_path / "trajectory.png").read_bytes()[:4] == b"\x89PNG"


def test_swarm_prints_a_table_of_outcomes(tmp_path):
    result = invoke("run", "--starts", "random:50", "--steps", "500", "--no-plot", "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert "minimum:right (global)" in result.output and "minimum:left (local)" in result.output
    assert "share" in result.output


def test_formula_landscape_and_schedule_options(tmp_path):
    result = invoke(
        "run",
        "--landscape",
        "(x**2 - 1)**2 + y**2",
        "--optimizer",
        "adam",
        "--lr",
        "0.05",
        "--start",
        "0.3,0.5",
        "--schedule",
        "warmup:steps=10>cosine:total=490",
        "--clip",
        "1",
        "--steps",
        "500",
        "--no-plot",
        "--out",
        str(tmp_path),
    )
    assert result.exit_code == 0, result.output
    spec = json.loads((tmp_path / "trajectory.json").read_text())["spec"]
    assert spec["schedule"]["kind"] == "warmup"
    assert spec["transforms"] == [{"kind": "clip_norm", "max_norm": 1.0}]


@pytest.mark.parametrize("formula", ["1", "x**2", "exp(exp(exp(x)))", "0*x + 3"])
def test_flat_and_wild_formulas_run_and_plot_without_a_traceback(tmp_path, formula):
    result = invoke("run", "--landscape", formula, "--steps", "50", "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert (tmp_path / "trajectory.png").read_bytes()[:4] == b"\x89PNG"


def test_a_stored_trajectory_replays_with_spec(tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    result = invoke(
        "run",
        "--optimizer",
        "langevin",
        "--starts",
        "random:20",
        "--steps",
        "300",
        "--no-plot",
        "--out",
        str(first),
    )
    assert result.exit_code == 0, result.output
    result = invoke("run", "--spec", str(first / "trajectory.json"), "--no-plot", "--out", str(second))
    assert result.exit_code == 0, result.output
    a = json.loads((first / "trajectory.json").read_text())
    b = json.loads((second / "trajectory.json").read_text())
    assert a["positions"] == b["positions"] and a["particles"] == b["particles"]


def test_the_compiled_backend_gives_the_same_outcome(tmp_path):
    result = invoke("run", "--backend", "kernel", "--momentum", "0.9", "--no-plot", "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert "outcome: minimum:right (global), reached at step 169" in result.output
    # an objective with data stays on torch (the kernels hold formulas, not data sets)
    args = ("--landscape", "logistic-risk", "--optimizer", "gd", "--out", str(tmp_path / "x"))
    refused = invoke("run", "--backend", "kernel", *args)
    text = " ".join(refused.output.split())
    assert refused.exit_code == 2 and "Traceback" not in text and not (tmp_path / "x").exists()
    assert text == (
        "error: invalid --backend='kernel': expected 'torch' or 'auto' here: "
        "no kernel supports objectives with data yet"
    )


def test_a_plain_run_uses_the_kernel_and_says_so(tmp_path):
    result = invoke("run", "--momentum", "0.9", "--no-plot", "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert "backend: kernel (compiled or loaded" in result.output.replace("\n", " ")
    data = json.loads((tmp_path / "trajectory.json").read_text())
    assert data["spec"]["backend"] == "auto"  # what was asked ...
    assert (data["summary"]["backend"], data["summary"]["fallback"]) == ("kernel", None)  # ... what ran


def test_auto_falls_back_to_torch_and_says_why(tmp_path):
    args = ("--landscape", "logistic-risk", "--optimizer", "gd", "--steps", "50", "--no-plot")
    result = invoke("run", *args, "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    why = "no kernel supports objectives with data yet"
    assert f"backend: torch (auto fell back: {why})" in " ".join(result.output.split())
    summary = json.loads((tmp_path / "trajectory.json").read_text())["summary"]
    assert (summary["backend"], summary["fallback"]) == ("torch", why)


def test_the_backend_help_names_the_choices_not_the_kernels_rules():
    text = " ".join(invoke("run", "--help").output.replace("│", " ").split())
    assert "auto (default: the compiled kernel where it supports the run, else torch), kernel, torch" in text
    assert "[default: auto]" in text and "adamw" not in text


def test_files_stay_under_the_size_asked_for(tmp_path):
    result = invoke(
        "run",
        "--starts",
        "random:2000",
        "--steps",
        "500",
        "--max-file-size",
        "300KB",
        "--no-plot",
        "--out",
        str(tmp_path),
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "trajectory.json").stat().st_size < 300 * 1024
    assert (tmp_path / "trajectory.csv").stat().st_size < 300 * 1024
    bad = invoke("run", "--max-file-size", "huge", "--out", str(tmp_path / "x"))
    assert bad.exit_code == 2 and "invalid --max-file-size" in bad.output


def test_spec_refuses_other_run_settings(tmp_path):
    first = tmp_path / "first"
    assert invoke("run", "--steps", "20", "--no-plot", "--out", str(first)).exit_code == 0
    result = invoke(
        "run", "--spec", str(first / "trajectory.json"), "--momentum", "0", "--out", str(tmp_path)
    )
    assert result.exit_code == 2
    assert "invalid --momentum=0.0: expected no other run settings with --spec" in result.output.replace(
        "\n", ""
    )


def test_an_interrupted_run_writes_what_it_finished_and_exits_130(tmp_path, monkeypatch):
    import descent.spec

    real = descent.spec.simulate

    def interrupted(*args, progress=None, **kwargs):
        def stop(k, total):
            if k >= 100:
                raise KeyboardInterrupt

        return real(*args, progress=stop, **kwargs)

    monkeypatch.setattr(descent.spec, "simulate", interrupted)
    # torch's loop reports progress every few steps (the kernel's, once per chunk of its work)
    result = invoke("run", "--steps", "1000", "--backend", "torch", "--no-plot", "--out", str(tmp_path))
    assert result.exit_code == 130
    data = json.loads((tmp_path / "trajectory.json").read_text())
    assert data["interrupted"] and data["steps_run"] == 100


def test_a_swarm_too_big_to_save_every_step_is_refused_and_the_summary_runs(tmp_path):
    from descent.dynamics.save import resident_bytes

    # 2 GB beyond what this test process already holds (the estimate counts it: after other tests in
    # the same worker it can be most of 2 GB, and then the working state alone was over the budget)
    budget = f"{(resident_bytes() >> 20) + 2048}MB"
    result = invoke(
        "run",
        "--starts",
        "random:300000",
        "--steps",
        "1000",
        "--memory-budget",
        budget,
        "--out",
        str(tmp_path),
    )
    assert result.exit_code == 2
    text = result.output.replace("\n", " ")
    assert "invalid --save='every:1'" in text and "--save summary" in text
    assert not (tmp_path / "trajectory.json").exists()
    result = invoke(
        "run",
        "--starts",
        "random:300000",
        "--steps",
        "20",
        "--save",
        "summary",
        "--memory-budget",
        budget,
        "--no-plot",
        "--out",
        str(tmp_path),
    )
    assert result.exit_code == 0, result.output
    assert "share" in result.output and (tmp_path / "trajectory.json").stat().st_size < 50_000_000


@pytest.mark.parametrize(
    "args, message",
    [
        (["--lr", "-1"], "invalid --lr=-1.0"),
        (["--optimizer", "sgdd"], "invalid --optimizer='sgdd'"),
        (["--momentum", "1.5"], "invalid --momentum=1.5"),
        (["--start", "a,b"], "invalid --start='a,b'"),
        (["--landscape", "x**2 + foo(y)"], "foo"),
        (["--schedule", "cosine:total=-3"], "invalid --schedule cosine.total=-3"),
        (["--hp", "beta9=3"], "invalid --hp='beta9'"),
        (["--param", "tilt=9"], "invalid --param tilt=9.0"),
        (["--save", "often"], "invalid --save='often'"),
        (["--memory-budget", "lots"], "invalid --memory-budget"),
        (["--batch-size", "8"], "invalid --batch-size=8"),
        (["--spec", "/nonexistent.json"], "invalid --spec='/nonexistent.json'"),
    ],
)
def test_bad_values_get_a_clear_error_and_exit_code_2(tmp_path, args, message):
    result = invoke("run", *args, "--out", str(tmp_path))
    assert result.exit_code == 2
    assert message in result.output.replace("\n", "")
    assert not (tmp_path / "trajectory.json").exists()


def test_list_commands_show_the_registries():
    landscapes = invoke("list", "landscapes", "--json")
    names = {row["name"] for row in json.loads(landscapes.output)}
    assert {"double-well", "plateau", "saddle", "quadratic", "rosenbrock"} <= names
    optimizers = json.loads(invoke("list", "optimizers", "--json").output)
    assert [o["name"] for o in optimizers] == [
        "gd",
        "momentum",
        "nesterov",
        "adagrad",
        "rmsprop",
        "adam",
        "adamw",
        "amsgrad",
        "langevin",
        "hd-sgd",
        "hd-momentum",
        "hd-adam",
    ]
    assert "lr=0.01" in invoke("list", "optimizers").output.replace(" ", "")


def test_help_everywhere():
    for args in ([], ["run"], ["list"], ["experiment"], ["experiment", "run"], ["report"], ["arena"]):
        result = invoke(*args, "--help")
        assert result.exit_code == 0 and "Usage" in result.output


def test_console_script_is_installed():
    out = subprocess.run(
        [sys.executable, "-m", "descent.cli", "--help"], capture_output=True, text=True, check=True
    )
    assert "run" in out.stdout and "arena" in out.stdout


def test_listing_landscapes_trains_no_network(tmp_path, monkeypatch):
    """digits-slice is trained at first use: the listing says so instead of training it (seconds)."""
    monkeypatch.setenv("DESCENT_CACHE_DIR", str(tmp_path))
    rows = {row["name"]: row for row in json.loads(invoke("list", "landscapes", "--json").stdout)}
    assert rows["digits-slice"]["start"] is None and rows["digits-slice"]["default_lr"] is None
    assert invoke("list", "landscapes").exit_code == 0
    assert rows["double-well"]["start"] == [-1.7, 0.0] and list(tmp_path.iterdir()) == []


def test_a_networks_run_summarises_its_weights_instead_of_printing_them(tmp_path):
    """A network's 1210 weights: the summary gives their count and norm, not 10 KB of numbers."""
    args = ("run", "--landscape", "digits-mlp", "--steps", "5", "--save", "summary", "--out", str(tmp_path))
    result = invoke(*args)
    assert result.exit_code == 0 and "final position (1210 coordinates, |w| = " in result.stdout
    assert len(result.stdout) < 3000


@pytest.mark.parametrize("save", ["every:1", "every:7"])
def test_a_learned_rate_is_in_the_csv_and_the_summary(tmp_path, save):
    """hd-sgd on rosenbrock: trajectory.csv's lr column is the rate the reference loop learns after each
    saved step (empty at step 0: nothing learned yet), and the summary gives the last one."""
    import csv

    from descent.landscapes import get_landscape
    from descent.optim import RULES
    from descent.spec import default_lr
    from tests.optim.test_hypergradient import ReferenceParticle

    args = ["--landscape", "rosenbrock", "--optimizer", "hd-sgd", "--steps", "40", "--save", save]
    result = runner.invoke(app, ["run", *args, "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader((tmp_path / "trajectory.csv").open()))
    land = get_landscape("rosenbrock")
    spec = json.loads((tmp_path / "trajectory.json").read_text())["spec"]
    start = torch.tensor([float(rows[0]["x0"]), float(rows[0]["x1"])], dtype=torch.float64)
    lr = {"lr": default_lr(land, "hd-sgd")}  # the run's default for this landscape
    particle = ReferenceParticle("hd-sgd", {**RULES["hd-sgd"].defaults(), **lr, **spec["hyper"]}, start)
    rates = {0: ""}
    for k in range(1, 41):
        particle.step(land.gradient(particle.w[None])[0])
        rates[k] = particle.rate
    assert rows[0]["lr"] == "" and len(rows) == (41 if save == "every:1" else 7)  # 0, 7, ..., 35, 40
    every = int(save.split(":")[1])  # the probe runs at the saved interval: the last frame (40) may fall
    for row in rows[1:]:  # between two of its calls
        step = int(row["step"])
        if step % every:
            assert row["lr"] == ""
        else:
            assert float(row["lr"]) == pytest.approx(rates[step], rel=1e-10)
    last = 40 - 40 % every
    assert f"learned rate at step {last}: {rates[last]:.4g}" in result.output
