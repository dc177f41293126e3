"""The public API type-checks (mypy, configured in pyproject.toml's ``[tool.mypy]``).

- The configured scope (``[tool.mypy] files``: the modules that define the public API: the package's
  entry, ``spec``, ``_errors``, ``random``; the engine, ``dynamics/{simulate, trajectory, events,
  save, probes}``; ``optim`` (optimizer, rules, schedules, transforms, the torch adapter); the
  landscapes' ``_base`` and ``_registry``; ``objectives``; the experiments' ``_base``, ``rows`` and
  ``figures``) has no type errors. The experiment modules, report, CLI, Arena, kernels, the
  landscapes' formula code, plots and theory are outside it (pyproject.toml says so too).
- A user's script written against the names ``descent`` exports type-checks, and a call with a
  wrong type is rejected: the exported signatures carry real hints, not ``Any``.
- ``RunSpec.with_``'s keywords (``RunSpecChanges``) are RunSpec's fields with their types.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import textwrap
from dataclasses import fields
from pathlib import Path

import pytest

from descent.spec import RunSpec, RunSpecChanges

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "pyproject.toml"

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("mypy") is None, reason="mypy is not installed (the dev extra has it)"
)

USER_SCRIPT = """
import torch

import descent
from descent import (
    DescentError,
    Landscape,
    Optimizer,
    RunSpec,
    Trajectory,
    get_landscape,
    run_spec,
    simulate,
)
from descent.dynamics import Events, SaveAt

well: Landscape = get_landscape("double-well", tilt=0.3)
opt: Optimizer = Optimizer.build("momentum", lr=torch.linspace(0.01, 0.05, 4), momentum=0.9)
starts: torch.Tensor = well.start().expand(4, -1)
traj: Trajectory = simulate(
    well, opt, starts, steps=100, save=SaveAt(every=10), events=Events(grad_tol=1e-3), seed=0
)
outcomes: list[str] = traj.outcomes
positions: torch.Tensor = traj.positions

spec = RunSpec(landscape="plateau", optimizer="gd", save="summary")
again: Trajectory = run_spec(spec)
digest: str = spec.digest
version: str = descent.__version__
try:
    get_landscape("no-such-landscape")
except DescentError as error:
    message: str = str(error)
"""


def mypy(*arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(CONFIG), *arguments],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_the_configured_scope_type_checks():
    result = mypy()
    assert result.returncode == 0, result.stdout + result.stderr


def _check_script(tmp_path: Path, source: str) -> subprocess.CompletedProcess:
    script = tmp_path / "user_script.py"
    script.write_text(textwrap.dedent(source))
    return mypy(str(script))


def test_a_script_using_the_public_api_type_checks(tmp_path):
    result = _check_script(tmp_path, USER_SCRIPT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_call_with_a_wrong_type_is_rejected(tmp_path):
    wrong = USER_SCRIPT + (
        '\nsimulate(well, opt, starts, steps="100")\nbad: int = spec.digest\nspec.with_(seed="1")\n'
    )
    result = _check_script(tmp_path, wrong)
    assert result.returncode == 1, result.stdout + result.stderr
    assert 'Argument "steps" to "simulate" has incompatible type "str"' in result.stdout
    assert 'Incompatible types in assignment (expression has type "str", variable has type "int")' in (
        result.stdout
    )
    assert 'Argument "seed" to "with_" of "RunSpec" has incompatible type "str"' in result.stdout


def test_with_takes_the_fields_of_a_run_spec():
    declared = {f.name: f.type for f in fields(RunSpec)}
    keywords = {name: hint.__forward_arg__ for name, hint in RunSpecChanges.__annotations__.items()}
    assert keywords == declared
