"""The command line's conventions for bad input and interruptions: one plain line, exit code 2, the
flag named as the user typed it; resources checked before any work; Ctrl-C keeps what finished."""

import pytest
import torch
from typer.testing import CliRunner

from descent.cli import app, main

torch.set_num_threads(1)
runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def error_line(result) -> str:
    """The whole output, which must be one line."""
    lines = result.output.strip("\n").splitlines()
    assert result.exit_code == 2, result.output
    assert len(lines) == 1, result.output
    return lines[0]


@pytest.mark.parametrize(
    "args, expected",
    [
        (
            ["--landscape", "max(*[x, y])"],
            "error: invalid --landscape formula 'max(*[x, y])': "
            "starred arguments are not allowed at column 5",
        ),
        (["--clip", "-1"], "error: invalid --clip=-1.0: expected a finite number in (0.0, inf)"),
        (["--lr", "-1"], "error: invalid --lr=-1.0: expected a finite number in (0.0, inf)"),
        (["--grad-noise", "-1"], "error: invalid --grad-noise=-1.0: expected a finite number in [0.0, inf)"),
    ],
)
def test_errors_are_one_plain_line_naming_the_flag(tmp_path, args, expected):
    assert error_line(invoke("run", *args, "--out", str(tmp_path))) == expected


def test_a_long_error_stays_on_one_line(tmp_path):
    line = error_line(invoke("run", "--starts", "grid:100000", "--out", str(tmp_path)))
    assert line.startswith("error: invalid --starts=10000000000 particles: this run would hold about")
    assert len(line) > 120 and not (tmp_path / "trajectory.json").exists()


def test_ctrl_c_while_writing_keeps_the_data_files_and_exits_130(tmp_path, monkeypatch):
    import descent.plots

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(descent.plots, "trajectory_figure", interrupted)
    result = invoke("run", "--steps", "50", "--out", str(tmp_path))
    assert result.exit_code == 130, result.output
    assert "interrupted" in result.output and "Traceback" not in result.output
    assert (tmp_path / "trajectory.json").stat().st_size > 0 and (tmp_path / "trajectory.csv").exists()


def test_ctrl_c_in_an_experiment_exits_130(tmp_path, monkeypatch):
    import descent.experiments

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(descent.experiments, "run_experiment", interrupted)
    result = invoke("experiment", "run", "all", "--quick", "--out", str(tmp_path))
    assert result.exit_code == 130, result.output


def test_run_help_shows_the_defaults_written_in_brackets_and_a_plain_no_plot_flag():
    text = " ".join(invoke("run", "--help").output.replace("│", " ").split())
    assert "--lr <float> learning rate [default: the landscape's; adaptive rules: 1/80 of the box]" in text
    assert "[default: half the machine's memory]" in text
    assert "--no-plot" in text and "--no-no-plot" not in text


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--device", "tpu"], "error: invalid --device='tpu': expected cpu, cuda or cuda:N"),
        (
            ["--landscape", "sphere", "--param", "dim=1000000"],
            "error: invalid --param dim=1000000.0: expected an integer in [1, 10000]",
        ),
    ],
)
def test_resource_requests_are_refused_before_any_work(tmp_path, args, expected):
    assert error_line(invoke("run", *args, "--out", str(tmp_path / "o"))) == expected
    assert not (tmp_path / "o").exists()


def test_a_bad_out_folder_is_refused_before_the_run(tmp_path, monkeypatch):
    import descent.spec

    def never(*args, **kwargs):
        raise AssertionError("the run started")

    monkeypatch.setattr(descent.spec, "simulate", never)
    (tmp_path / "file").write_text("")
    for out in (tmp_path / "file", tmp_path / "file" / "sub"):
        line = error_line(invoke("run", "--out", str(out)))
        assert (
            line
            == f"error: invalid --out='{out}': expected a path in a folder ({tmp_path / 'file'} is a file)"
        )


FINITE = "expected comma-separated finite numbers, e.g. -1.7,0 (points separated by ';')"


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--start", "nan,0"], f"error: invalid --start='nan,0': {FINITE}"),
        (["--starts", "1,2;inf,3"], f"error: invalid --starts='1,2;inf,3': {FINITE}"),
        (["--start", "0.5"], "error: invalid --start='0.5': expected points of 2 numbers"),
        (
            ["--start", "1,0", "--starts", "random:5"],
            "error: invalid --starts='random:5': expected one of --start and --starts, not both (aliases)",
        ),
    ],
)
def test_bad_starts_are_reported_as_typed(tmp_path, args, expected):
    assert error_line(invoke("run", *args, "--out", str(tmp_path))) == expected


def test_each_run_gets_its_own_folder_named_by_the_spec_digest(tmp_path, monkeypatch):
    import json

    from descent.spec import RunSpec

    monkeypatch.chdir(tmp_path)
    folders = []
    for momentum in ("0", "0.9"):
        result = invoke("run", "--momentum", momentum, "--steps", "20", "--no-plot")
        assert result.exit_code == 0, result.output
        (folder,) = {path.parent for path in (tmp_path / "out").glob("*/trajectory.json")} - set(folders)
        spec = RunSpec.from_dict(json.loads((folder / "trajectory.json").read_text())["spec"])
        assert folder.name == spec.digest[:8] and f"wrote out/{folder.name}/trajectory.json" in result.output
        folders.append(folder)
    assert len(set(folders)) == 2


def test_the_run_header_shows_schedule_clipping_noise_and_decay(tmp_path):
    args = (
        "--schedule",
        "warmup:steps=10>cosine:total=90",
        "--clip",
        "1",
        "--grad-noise",
        "0.5",
        "--l2",
        "0.01",
    )
    result = invoke("run", *args, "--steps", "100", "--no-plot", "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0] == (
        "double-well · momentum (lr=0.02, momentum=0.9) · schedule warmup:steps=10>cosine:total=90,final=0.0"
        " · grad noise 0.5 · clip 1.0 · l2 0.01"
    )
    plain = invoke("run", "--steps", "10", "--no-plot", "--out", str(tmp_path))
    assert plain.output.splitlines()[0] == "double-well · momentum (lr=0.02, momentum=0.9)"


def test_an_outcome_named_global_is_not_labelled_twice():
    from descent.cli import outcome_name
    from descent.landscapes import get_landscape

    rosenbrock, double_well = get_landscape("rosenbrock"), get_landscape("double-well")
    assert outcome_name("minimum:global", rosenbrock) == "minimum:global"
    assert outcome_name("minimum:left", double_well) == "minimum:left (local)"
    assert outcome_name("moving", double_well) == "moving"


def test_experiment_and_report_refuse_a_bad_out_before_any_work(tmp_path, monkeypatch):
    import descent.experiments
    import descent.experiments.report

    def never(*args, **kwargs):
        raise AssertionError("the work started")

    monkeypatch.setattr(descent.experiments, "run_experiment", never)
    monkeypatch.setattr(descent.experiments.report, "build_report", never)
    file = tmp_path / "file"
    file.write_text("")
    line = error_line(invoke("experiment", "run", "all", "--quick", "--out", str(file)))
    assert line == f"error: invalid --out='{file}': expected a path in a folder ({file} is a file)"
    line = error_line(invoke("report", "--out", str(file)))
    assert line == f"error: invalid --out='{file}': expected a path in a folder ({file} is a file)"
    inside = file / "report"
    line = error_line(invoke("report", "--out", str(inside)))
    assert line == f"error: invalid --out='{inside}': expected a path in a folder ({file} is a file)"


def test_a_progress_bar_covers_the_file_writing_on_a_terminal(tmp_path, monkeypatch):
    import io

    from rich.console import Console

    import descent.cli

    screen = io.StringIO()
    monkeypatch.setattr(descent.cli, "console", Console(file=screen, force_terminal=True, width=120))
    result = invoke("run", "--steps", "20", "--no-plot", "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert f"writing {tmp_path}" in screen.getvalue()


@pytest.mark.parametrize(
    "args, expected",
    [
        (["run", "--lr", "abc"], "error: Invalid value for '--lr': Input should be a valid number"),
        (["run", "--bogus"], "error: No such option: --bogus"),
        (["experiment", "run"], "error: Missing argument 'name'."),
    ],
)
def test_clicks_usage_errors_are_one_plain_line_too(capsys, args, expected):
    """What Click itself rejects (a wrong type, an unknown flag, a missing argument) is not a boxed panel
    but the same one line and exit code 2 as descent's own errors, with where to find help."""
    with pytest.raises(SystemExit) as stop:
        main(args)
    assert stop.value.code == 2
    out, err = capsys.readouterr()
    lines = err.strip("\n").splitlines()
    assert out == "" and len(lines) == 1, err
    assert lines[0].startswith(expected) and lines[0].endswith(
        f"(see 'descent {args[0]}{' run' if args[0] == 'experiment' else ''} --help')"
    )


def test_a_bare_command_group_shows_its_help(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["list"])
    assert stop.value.code == 0
    assert "landscapes" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--schedule", "bogus:x=1"], "error: invalid --schedule kind='bogus': expected one of"),
        (["--save", "every:0"], "error: invalid --save every=0: expected an integer >= 1"),
        (["--landscape", "nope"], "error: invalid --landscape='nope': expected one of: ackley, beale,"),
        (["--backend", "nope"], "error: invalid --backend='nope': expected one of: torch, kernel, auto"),
    ],
)
def test_errors_name_the_flag_and_list_choices_as_words(tmp_path, args, expected):
    assert error_line(invoke("run", *args, "--out", str(tmp_path))).startswith(expected)


@pytest.mark.parametrize("port", ["-1", "0", "99999"])
def test_arena_refuses_a_port_that_does_not_exist(port):
    assert (
        error_line(invoke("arena", "--port", port))
        == f"error: invalid --port={port}: expected an integer in [1, 65535]"
    )


def test_the_command_starts_without_loading_torch():
    """`descent --help` (and a Ctrl-C before a command starts its work) never waits for torch's import:
    the package imports its public names when first used."""
    import subprocess
    import sys

    code = "import sys, descent.cli; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_a_huge_final_position_is_written_short(tmp_path):
    result = invoke(
        "run", "--start", "1e308,1e308", "--landscape", "x**2+y**2", "--out", str(tmp_path), "--no-plot"
    )
    assert result.exit_code == 0 and "final position (1e+308, 1e+308)" in result.output


def test_a_spec_file_that_is_not_a_spec_is_named_not_echoed(tmp_path):
    secret = tmp_path / "notes.txt"
    secret.write_text("password: hunter2\nmore private lines\n")
    line = error_line(invoke("run", "--spec", str(secret), "--out", str(tmp_path / "out")))
    assert line.startswith(f"error: invalid --spec='{secret}': expected JSON") and "hunter2" not in line
