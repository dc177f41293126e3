"""`descent train --monitor K`: the physics monitor as a callback of the training lab. It only reads:
the run's numbers equal a run without it; its checks fall every K steps, their lines reach the
terminal and its report lands in OUT/monitor."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from descent.cli import app
from descent.train.loop import TIMES, TrainConfig, train

torch.set_num_threads(1)
runner = CliRunner()
SMALL = {"dataset": "digits", "n": 300, "model": "mlp:16", "epochs": 2, "seed": 0, "lr": 0.05}


def without_times(rows):
    return [{k: v for k, v in row.items() if k not in TIMES} for row in rows]


def test_a_monitored_run_equals_an_unmonitored_one_and_checks_every_k_steps():
    config = TrainConfig(**SMALL, optimizer="momentum", batch_size=32)
    plain = train(config)
    lines: list[str] = []
    watched = train(config, monitor_every=5, on_check=lines.append)
    assert without_times(watched.metrics) == without_times(plain.metrics)
    for a, b in zip(plain.model.parameters(), watched.model.parameters()):
        assert torch.equal(a, b)
    steps = watched.metrics[-1]["steps"]  # 240 training examples: 8 steps an epoch
    assert [row["step"] for row in watched.monitor.rows] == list(range(5, steps + 1, 5))
    assert len(lines) == len(watched.monitor.rows) and all(line.startswith("step ") for line in lines)
    assert watched.monitor.diagnosis is not None


def test_the_cli_prints_the_checks_and_writes_the_report(tmp_path):
    args = ["--dataset", "digits", "--n", "300", "--model", "mlp:16", "--epochs", "2", "--lr", "0.05"]
    result = runner.invoke(app, ["train", *args, "--monitor", "4", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "step 4 |" in result.output and "monitor (4 checks):" in result.output
    rows = json.loads((tmp_path / "monitor" / "monitor.json").read_text())
    assert len(rows["rows"] if isinstance(rows, dict) else rows) == 4
    written = {p.name for p in (tmp_path / "monitor").iterdir()}
    assert written >= {"monitor.csv", "monitor.png", "monitor.html"}


@pytest.mark.parametrize("value", ["0", "-3", "abc", "2.5"])
def test_a_bad_period_is_refused_in_one_line(tmp_path, value):
    result = runner.invoke(app, ["train", "--n", "100", "--epochs", "1", "--monitor", value])
    assert result.exit_code == 2
    assert "--monitor" in result.output and "Traceback" not in result.output


def test_a_hypergradient_rule_reports_the_rate_it_learned():
    """The epoch rows' lr and the monitor's are the learned rate, not the starting one."""
    config = TrainConfig(**{**SMALL, "lr": 0.001}, optimizer="hd-adam", batch_size=32)
    result = train(config, monitor_every=4)
    state = result.optimizer.state[next(result.model.parameters())]
    learned = float(state["rate"].reshape(-1)[0])
    assert learned != pytest.approx(0.001)
    assert result.metrics[-1]["lr"] != 0.001 and result.monitor.rows[-1]["lr"] == pytest.approx(learned)


def test_a_period_longer_than_the_run_says_no_check_ran(tmp_path):
    args = ["--dataset", "digits", "--n", "100", "--model", "mlp:4", "--epochs", "1", "--out", str(tmp_path)]
    result = runner.invoke(app, ["train", *args, "--monitor", "999999"])
    assert result.exit_code == 0, result.output
    assert "monitor: no check ran (--monitor 999999 is more than the run's 3 steps)" in result.output
    assert not (tmp_path / "monitor").exists()


def test_the_cli_logs_the_checks_to_tensorboard(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    args = ["--dataset", "digits", "--n", "300", "--model", "mlp:16", "--epochs", "1", "--lr", "0.05"]
    log = tmp_path / "tb"
    result = runner.invoke(
        app, ["train", *args, "--monitor", "4", "--tensorboard", str(log), "--out", str(tmp_path / "run")]
    )
    assert result.exit_code == 0, result.output
    reader = EventAccumulator(str(log))
    reader.Reload()
    rows = json.loads((tmp_path / "run" / "monitor" / "monitor.json").read_text())
    rows = rows["rows"] if isinstance(rows, dict) else rows
    assert [e.step for e in reader.Scalars("monitor/loss")] == [row["step"] for row in rows] == [4, 8]
    assert reader.Scalars("monitor/loss")[0].value == pytest.approx(rows[0]["loss"], rel=1e-6)


def test_tensorboard_without_monitor_is_refused_in_one_line(tmp_path):
    result = runner.invoke(app, ["train", "--n", "100", "--epochs", "1", "--tensorboard", str(tmp_path)])
    assert result.exit_code == 2
    assert "--tensorboard" in result.output and "--monitor" in result.output
    assert "Traceback" not in result.output and not any(tmp_path.iterdir())


def test_a_schedule_with_a_learned_rate_is_refused_before_training(tmp_path):
    args = ["--n", "100", "--epochs", "1", "--optimizer", "hd-sgd", "--schedule", "cosine"]
    result = runner.invoke(app, ["train", *args, "--out", str(tmp_path / "run")])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "--schedule='cosine'" in result.output and "hd-sgd, which learns its own rate" in result.output
    assert not (tmp_path / "run").exists()
