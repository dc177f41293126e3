"""The runnable examples in the docstrings run (DESIGN.md: docstrings carry a runnable example)."""

import doctest
import importlib
import pkgutil

import pytest
import torch

import descent

torch.set_num_threads(1)
MODULES = sorted(
    name
    for _, name, _ in pkgutil.walk_packages(descent.__path__, "descent.")
    if not name.startswith("descent.arena")  # the web page's modules import Dash; its examples are pages
)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    module = importlib.import_module(name)
    result = doctest.testmod(
        module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False
    )
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"
