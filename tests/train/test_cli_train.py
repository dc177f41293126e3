"""`descent train` driven as a user would: the issue's command at a small size, one-line errors that
name the flag (exit 2), and Ctrl-C followed by the printed resume command (exit 130, then bit for bit)."""

from __future__ import annotations

import json
import shlex

import pytest
from typer.testing import CliRunner

import descent.train.loop
from descent.cli import app
from descent.train.loop import TIMES

runner = CliRunner()
SMALL = ["--dataset", "digits", "--n", "300", "--model", "mlp:16", "--epochs", "3", "--seed", "0"]


def invoke(*args: str):
    return runner.invoke(app, ["train", *args], catch_exceptions=False)


def test_the_issues_command_at_a_small_size(tmp_path):
    args = ["--optimizer", "momentum", "--lr", "0.1", "--batch-size", "32", "--out", str(tmp_path)]
    result = invoke(*SMALL, *args)
    assert result.exit_code == 0, result.output
    names = {"config.json", "metrics.csv", "metrics.json", "checkpoint.pt", "curves.png"}
    assert {p.name for p in tmp_path.iterdir()} == names
    config = json.loads((tmp_path / "config.json").read_text())
    assert (config["dataset"], config["n"], config["model"], config["batch_size"]) == (
        "digits",
        300,
        "mlp:16",
        32,
    )
    rows = json.loads((tmp_path / "metrics.json").read_text())["epochs"]
    assert [row["steps"] for row in rows] == [8, 16, 24]  # 240 training examples in batches of 32
    assert f"epochs 3 of 3 (24 steps); training {rows[-1]['seconds']:.1f} s" in result.output
    assert f"{rows[-1]['test_loss']:.6g}" in result.output and f"wrote {tmp_path}" in result.output


def test_default_folder_is_named_by_the_settings(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert invoke(*SMALL, "--batch-size", "full", "--no-plot").exit_code == 0
    (folder,) = (tmp_path / "out").iterdir()
    assert folder.name.startswith("train-") and not (folder / "curves.png").exists()
    assert invoke(*SMALL, "--batch-size", "full", "--no-plot").exit_code == 0
    assert len(list((tmp_path / "out").iterdir())) == 1  # the same settings, the same folder


@pytest.mark.parametrize(
    "args, start",
    [
        (["--batch-size", "half"], "error: invalid --batch-size='half': expected 'full'"),
        (["--batch-size", "0"], "error: invalid --batch-size=0: expected 'full'"),
        (
            ["--batch-size", "999"],
            "error: invalid --batch-size=999: expected 'full' or an integer in [1, 240]",
        ),
        (["--epochs", "0"], "error: invalid --epochs=0: expected an integer >= 1"),
        (["--lr", "-1"], "error: invalid --lr=-1.0: expected a finite number in (0, inf)"),
        (["--momentum", "2"], "error: invalid --momentum=2.0: expected a finite number in [0, 1)"),
        (
            ["--optimizer", "adam", "--momentum", "0.9"],
            "error: invalid --momentum=0.9: expected none for adam",
        ),
        (["--optimizer", "nope"], "error: invalid --optimizer='nope': expected one of: gd, momentum"),
        (
            ["--schedule", "step:x:1"],
            "error: invalid --schedule='step:x:1': expected one of: step:EPOCHS:GAMMA",
        ),
        (["--hp", "betas"], "error: invalid --hp='betas': expected key=value"),
        (["--clip", "0"], "error: invalid --clip=0.0: expected a finite number in (0, inf)"),
        (["--device", "tpu"], "error: invalid --device='tpu': expected cpu, cuda or cuda:N"),
        (["--model", "mlp:a"], "error: invalid --model='mlp:a': expected one of: mlp:WIDTHS"),
        (["--n", "5000"], "error: invalid --n=5000: expected an integer in [2, 1797]"),
        (["--resume"], "error: invalid --resume="),
    ],
)
def test_bad_flags_give_one_line_and_exit_2(tmp_path, args, start):
    result = invoke(*SMALL, "--out", str(tmp_path / "run"), *args)
    lines = result.output.strip("\n").splitlines()
    assert result.exit_code == 2 and len(lines) == 1, result.output
    assert lines[0].startswith(start), lines[0]
    assert not (tmp_path / "run" / "metrics.csv").exists()


def test_a_malformed_csv_names_its_row(tmp_path):
    path = tmp_path / "table.csv"
    path.write_text("a,b,label\n1,2,x\n3,4,y\n5,?,x\n")
    result = invoke("--dataset", str(path), "--target", "label", "--out", str(tmp_path / "run"))
    assert result.exit_code == 2
    assert result.output.strip() == f"error: invalid {path} row 4 column b='?': expected a finite number"


def test_ctrl_c_keeps_the_finished_epochs_and_the_printed_command_resumes(tmp_path, monkeypatch):
    straight = tmp_path / "straight"
    assert invoke(*SMALL, "--out", str(straight), "--no-plot").exit_code == 0

    epochs = []
    run_epoch = descent.train.loop.run_epoch

    def interrupted_in_the_second(*args):
        epochs.append(1)
        if len(epochs) == 2:
            raise KeyboardInterrupt
        return run_epoch(*args)

    monkeypatch.setattr(descent.train.loop, "run_epoch", interrupted_in_the_second)
    cut = tmp_path / "cut"
    result = invoke(*SMALL, "--out", str(cut), "--no-plot")
    assert result.exit_code == 130 and "Traceback" not in result.output
    assert "interrupted after epoch 1 of 3" in result.output
    assert len(json.loads((cut / "metrics.json").read_text())["epochs"]) == 1
    monkeypatch.setattr(descent.train.loop, "run_epoch", run_epoch)

    command = next(line for line in result.output.splitlines() if line.startswith("resume with: "))
    words = shlex.split(command.removeprefix("resume with: "))
    assert words[:2] == ["descent", "train"] and words[-1] == "--resume"
    assert invoke(*words[2:], "--no-plot").exit_code == 0

    def rows(folder):
        epochs = json.loads((folder / "metrics.json").read_text())["epochs"]
        return [{k: v for k, v in row.items() if k not in TIMES} for row in epochs]

    assert rows(cut) == rows(straight) and len(rows(cut)) == 3
