"""examples/monitor_loop.py, the plain PyTorch loop on digits with the two monitor lines, runs and
diagnoses: a sensible lr is healthy, a 30x too large one diverges (advice: a lower lr), a 100x too
small one is cold (advice: a larger lr)."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest
import torch

torch.set_num_threads(1)

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "monitor_loop.py"


@pytest.fixture(scope="module")
def example():
    return runpy.run_path(str(EXAMPLE))


@pytest.fixture(scope="module")
def main(example):
    return example["main"]


def test_every_option_has_its_help_and_default(example):
    """``--help`` says what each option is and its default (the defaults of main())."""
    parser = example["parser"]()
    text = " ".join(parser.format_help().split())
    options = [action for action in parser._actions if action.dest != "help"]
    assert [a.dest for a in options] == ["steps", "every", "lr", "batch", "out", "seed"]
    for action in options:
        assert action.help and f"{action.help} (default: {action.default})" in text
    defaults = vars(parser.parse_args([]))
    assert {k: defaults[k] for k in ("steps", "every", "lr", "batch", "seed")} == {
        "steps": 600, "every": 50, "lr": 0.1, "batch": 32, "seed": 0
    }  # fmt: skip


def test_the_example_has_two_monitor_lines():
    source = EXAMPLE.read_text()
    assert source.count("# monitor, ") == 2 and "descent.watch(" in source and "monitor.step(loss)" in source


def test_the_example_runs_and_reports(main, tmp_path, capsys):
    monitor = main(steps=150, every=50, lr=0.1, out=str(tmp_path))
    out = capsys.readouterr()
    assert [line.split(" |")[0] for line in out.err.splitlines()] == ["step 50", "step 100", "step 150"]
    assert monitor.diagnosis.name == "healthy" and monitor.diagnosis.message in out.out
    assert (tmp_path / "monitor.md").exists() and (tmp_path / "monitor.png").exists()


@pytest.mark.parametrize("lr, name, direction", [(3.0, "diverging", -1), (0.001, "cold", +1)])
def test_the_example_diagnoses_a_bad_lr(main, lr, name, direction, capsys):
    monitor = main(steps=100, every=20, lr=lr)
    assert monitor.diagnosis.name == name
    assert (monitor.diagnosis.lr - lr) * direction > 0  # lower for diverging, higher for cold
