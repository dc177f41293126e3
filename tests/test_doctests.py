"""The runnable examples in the docstrings run (DESIGN.md: docstrings carry a runnable example)."""

import doctest
import importlib
import pkgutil

import pytest
import torch

import descent

torch.set_num_threads(1)
MODULES = sorted(name for _, name, _ in pkgutil.walk_packages(descent.__path__, "descent."))


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    """Every module's examples, the web page's included (its app is built, not served)."""
    module = importlib.import_module(name)
    result = doctest.testmod(
        module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False
    )
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"
