"""No face computes physics of its own: the Arena, the experiments and the CLI build specs and read
what the engine returns. This test walks their syntax trees and fails on a private import from the
optimizers, a call of a rule's ``update``, a direct ``simulate`` (faces call ``run_spec``) or a gradient
computed by the face itself."""

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "descent"
FACES = sorted(
    [*SRC.joinpath("arena").rglob("*.py"), *SRC.joinpath("experiments").rglob("*.py"), SRC / "cli.py"]
)
GRADIENT_METHODS = {"gradient", "value_and_grad", "value_and_gradient", "autograd_gradient", "backward"}


def violations(tree: ast.AST) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("descent.optim"):
            found += [f"imports {a.name} from {node.module}" for a in node.names if a.name.startswith("_")]
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            modules = (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
            )
            names = [a.name for a in node.names]
            if any(m.startswith("descent.dynamics.reference") for m in modules) or (
                any(m == "descent.dynamics" for m in modules) and "simulate" in names
            ):
                found.append("imports the loop itself (faces call descent.spec.run_spec)")
            if any(m.startswith("descent.dynamics.simulate") for m in modules):
                found.append("imports descent.dynamics.simulate")
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Name) and func.id == "simulate":
            found.append(f"calls simulate at line {node.lineno}")
        if isinstance(func, ast.Attribute):
            owner = ast.unparse(func.value)
            if func.attr == "update" and "rule" in owner.lower():
                found.append(f"calls {owner}.update at line {node.lineno}")
            if func.attr in GRADIENT_METHODS:
                found.append(f"computes a gradient ({owner}.{func.attr}) at line {node.lineno}")
            if func.attr == "grad" and owner in ("torch.autograd", "autograd"):
                found.append(f"calls torch.autograd.grad at line {node.lineno}")
    return found


@pytest.mark.parametrize("path", FACES, ids=lambda p: str(p.relative_to(SRC)))
def test_faces_do_not_compute_physics_of_their_own(path):
    assert violations(ast.parse(path.read_text())) == []


def test_the_check_catches_each_kind_of_violation():
    bad = """
from descent.optim.rules import _adam_step
from descent.dynamics import simulate
rule.update(g, s, x, hp, None)
landscape.gradient(x)
torch.autograd.grad(y, x)
loss.backward()
"""
    assert len(violations(ast.parse(bad))) == 6
