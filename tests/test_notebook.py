"""examples/seeds_story.ipynb runs from top to bottom: a cell that raises fails the test.

With nbclient and ipykernel (the ``dev`` extra) the notebook runs in a real Jupyter kernel, as a
user would run it; without them its code cells run in order in one namespace in this process.
The notebook's own cells assert the physics (outcomes, crossing and escape steps, Boltzmann shares).
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parents[1] / "examples" / "seeds_story.ipynb"
HAVE_NBCLIENT = all(importlib.util.find_spec(m) for m in ("nbclient", "nbformat", "ipykernel"))


class CellFailed(AssertionError):
    """A notebook cell raised."""


def _code_cells(path: Path) -> list[str]:
    cells = json.loads(path.read_text())["cells"]
    return [
        "".join(c["source"]) if isinstance(c["source"], list) else c["source"]
        for c in cells
        if c["cell_type"] == "code"
    ]


def run_in_process(path: Path) -> dict:
    """Run the code cells in order in one namespace (matplotlib without a display)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    namespace: dict = {"__name__": "__main__"}
    try:
        for i, source in enumerate(_code_cells(path)):
            try:
                exec(compile(source, f"{path.name}[cell {i}]", "exec"), namespace)
            except Exception as error:
                raise CellFailed(f"{path.name}: code cell {i} raised {error!r}") from error
    finally:
        plt.close("all")
    return namespace


def run_in_kernel(path: Path) -> None:
    """Execute the notebook in a Jupyter kernel (nbclient); its working folder is the notebook's."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    )
    try:
        client.execute()
    except CellExecutionError as error:
        raise CellFailed(f"{path.name}: {error}") from error


def run_notebook(path: Path) -> None:
    """In a Jupyter kernel where nbclient and ipykernel are installed, else in this process."""
    (run_in_kernel if HAVE_NBCLIENT else run_in_process)(path)


def test_the_seeds_story_notebook_runs_in_a_kernel(monkeypatch):
    if not HAVE_NBCLIENT:
        pytest.skip("nbclient, nbformat or ipykernel is not installed (the dev extra has them)")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    run_in_kernel(NOTEBOOK)


def test_the_seeds_story_notebook_runs_in_process():
    run_in_process(NOTEBOOK)


def test_the_notebook_tells_all_four_scenes():
    text = "\n".join(_code_cells(NOTEBOOK))
    for scene in (
        'landscape="double-well", optimizer="momentum"',
        'landscape="plateau"',
        'landscape="saddle"',
        'optimizer="langevin"',
    ):
        assert scene in text


@pytest.mark.parametrize("runner", [run_in_process, run_notebook], ids=["in-process", "default"])
def test_a_cell_that_raises_fails_the_run(tmp_path, runner):
    broken = tmp_path / "broken.ipynb"
    broken.write_text(
        json.dumps(
            {
                "cells": [
                    {
                        "id": "ok",
                        "cell_type": "code",
                        "source": "x = 1",
                        "metadata": {},
                        "outputs": [],
                        "execution_count": None,
                    },
                    {
                        "id": "boom",
                        "cell_type": "code",
                        "source": "raise ValueError('boom')",
                        "metadata": {},
                        "outputs": [],
                        "execution_count": None,
                    },
                ],
                "metadata": {
                    "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
                },
                "nbformat": 4,
                "nbformat_minor": 5,
            }
        )
    )
    with pytest.raises(CellFailed, match="boom"):
        runner(broken)
