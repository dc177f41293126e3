"""The README's Python example runs as written (a user pastes it first)."""

import re
from pathlib import Path

import torch

README = Path(__file__).resolve().parents[1] / "README.md"


def test_the_engine_example_in_the_readme_runs(capsys):
    torch.set_num_threads(1)
    text = README.read_text()
    section = text.split("## The engine in Python", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    exec(compile(code, "README.md", "exec"), {})
    printed = capsys.readouterr().out
    assert "{'minimum:right'}" in printed
