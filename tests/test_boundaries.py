"""No face computes physics of its own (DESIGN.md, "One engine, several faces"): the sources of the
Arena, the experiments and the CLI never import a rule's private parts, call a rule's ``update``, call
``simulate`` (faces call ``descent.spec.run_spec``) or take a gradient. Read from the syntax trees of
their files, so a comment or a string never trips it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "descent"
FACES = sorted(
    [*SRC.joinpath("arena").rglob("*.py"), *SRC.joinpath("experiments").rglob("*.py"), SRC / "cli.py"]
)
GRADIENT_METHODS = ("backward", "gradient", "value_and_grad", "value_and_gradient", "autograd_gradient")
RULE_NAMES = ("rule", "rules", "get_rule")  # a rule, the registry, or the lookup, in any spelling


def _dotted(node: ast.AST) -> str:
    """``torch.autograd.grad`` for the expression ``torch.autograd.grad`` (calls and subscripts are kept
    as their receiver: ``RULES[name].update`` -> ``RULES.update``)."""
    parts = []
    while True:
        if isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        elif isinstance(node, (ast.Call, ast.Subscript)):
            node = node.func if isinstance(node, ast.Call) else node.value
        elif isinstance(node, ast.Name):
            parts.append(node.id)
            break
        else:
            break
    return ".".join(reversed(parts))


def violations(source: str, filename: str = "<source>") -> list[str]:
    """Each forbidden import or call in ``source``, as 'file:line: what'."""
    found = []

    def flag(node: ast.AST, what: str) -> None:
        found.append(f"{filename}:{node.lineno}: {what}")

    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("descent.optim"):
            if any(part.startswith("_") for part in node.module.split(".")):
                flag(node, f"imports the private module {node.module}")
            for alias in node.names:
                if alias.name.startswith("_"):
                    flag(node, f"imports the private name {alias.name} from {node.module}")
        elif isinstance(node, ast.ImportFrom) and any(alias.name == "simulate" for alias in node.names):
            flag(node, f"imports simulate from {node.module}")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if alias.name.startswith("descent.optim") and any(p.startswith("_") for p in parts):
                    flag(node, f"imports the private module {alias.name}")
        elif isinstance(node, ast.Call):
            name = _dotted(node.func)
            last = name.rsplit(".", 1)[-1] if name else ""
            receiver = name.lower().split(".")[:-1]
            if last == "update" and (len(node.args) > 1 or any(r in RULE_NAMES for r in receiver)):
                flag(node, f"calls a rule's update ({name})")
            elif last == "simulate":
                flag(node, f"calls simulate ({name})")
            elif last in GRADIENT_METHODS:
                flag(node, f"computes a gradient ({name})")
            elif name.endswith("autograd.grad") or name.endswith("func.grad") or name in ("grad", "jacrev"):
                flag(node, f"computes a gradient ({name})")
    return found


@pytest.mark.parametrize("path", FACES, ids=lambda p: str(p.relative_to(SRC)))
def test_faces_compute_no_physics_of_their_own(path):
    found = violations(path.read_text(), str(path.relative_to(SRC)))
    assert not found, "a face must read physics from the engine:\n" + "\n".join(found)


def test_every_face_is_checked():
    assert len([p for p in FACES if "arena" in p.parts]) >= 9 and len(FACES) >= 20


@pytest.mark.parametrize(
    "line",
    [
        "from descent.optim.rules import _adam_edge",
        "from descent.optim._base import per_particle",
        "from descent.optim import _lr",
        "import descent.optim._base",
        "from descent.dynamics import simulate",
        "from descent.dynamics.simulate import simulate",
        "traj = simulate(well, optimizer, starts, 100)",
        "traj = descent.dynamics.simulate(well, optimizer, starts, 100)",
        "u, s = rule.update(g, state, x, hp, None)",
        "u, s = optimizer.rule.update(g, state, x, hp, None)",
        "u, s = RULES[name].update(g, state, x, hp, None)",
        "u, s = get_rule('adam').update(g, state, x, hp, draw)",
        "u, s = step_rule.update(g, state)",
        "(g,) = torch.autograd.grad(u.sum(), x)",
        "g = grad(f)(x)",
        "loss.backward()",
        "g = landscape.gradient(x)",
        "g = trajectory.landscape.gradient(x)",
        "value, g = objective.value_and_grad(x, None)",
        "value, g = landscape.value_and_gradient(x)",
    ],
)
def test_the_check_catches(line):
    assert violations(line), line


@pytest.mark.parametrize(
    "line",
    [
        "state.update(landscape='plateau')",
        "swarm.update(on=True, n=5)",
        "new['swarm'].update(data.get('swarm') or {})",
        "from descent.optim import RULES, Optimizer",
        "from descent.dynamics import Trajectory, nearest_minimum",
        "edge = RULES[name].edge(hessian, state, hp)",
        "hess = landscape.hessian(points)",
        "# rule.update(g, state, x, hp, None) in a comment",
        "text = 'loss.backward()'",
    ],
)
def test_the_check_lets_a_face_read_the_engine(line):
    assert not violations(line), violations(line)
