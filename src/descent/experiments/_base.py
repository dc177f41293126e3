"""What every experiment returns, and the registry `descent experiment` reads.

An experiment module defines a frozen ``Config`` dataclass (its full size by default, with a
``quick()`` classmethod for the size the tests run), ``CLAIM`` (the seed's words it checks) and
``run(config, progress=None) -> Result``.

Every run behind an experiment's numbers is a `RunSpec` run by `run_spec` through :class:`Runs`, which
keeps each distinct spec; the result stores them (``Result.specs``), so any run can be replayed.
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from descent.dynamics import Trajectory
from descent.landscapes import Landscape
from descent.spec import RunSpec, run_spec

Verdict = Literal["held", "did not hold", "partly held"]
VERDICTS: tuple[str, ...] = ("held", "did not hold", "partly held")
Progress = Callable[[int, int], None]


@dataclass
class Result:
    """An experiment's outcome: the measured ``numbers`` (with standard errors where statistical),
    the ``theory`` they are compared with, a ``verdict`` on the seed's claim and why, a figure, and
    ``specs``: the `RunSpec` of every run behind the numbers (as dicts; `RunSpec.from_dict` rebuilds
    one, `run_spec` replays it)."""

    name: str
    claim: str
    verdict: Verdict
    explanation: str
    numbers: dict[str, Any]
    theory: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    figure: Any = None  # a matplotlib Figure
    checks: dict[str, bool] = field(default_factory=dict)  # named tolerance checks, all must pass to "hold"
    specs: list[dict] = field(default_factory=list)  # the RunSpec dicts of its runs, one per distinct run

    def __post_init__(self) -> None:
        # numpy and torch numbers become plain Python ones: clean JSON and CLI output
        self.numbers, self.theory, self.config = plain(self.numbers), plain(self.theory), plain(self.config)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "claim": self.claim,
            "verdict": self.verdict,
            "explanation": self.explanation,
            "numbers": self.numbers,
            "theory": self.theory,
            "checks": self.checks,
            "config": self.config,
            "specs": self.specs,
        }

    def figure_png(self) -> bytes:
        if self.figure is None:
            return b""
        buffer = io.BytesIO()
        self.figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
        return buffer.getvalue()

    def figure_base64(self) -> str:
        return base64.b64encode(self.figure_png()).decode()

    def save(self, out: str | Path) -> dict[str, Path]:
        """Write ``NAME.json`` and ``NAME.png`` into ``out``; return their paths."""
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        paths = {"json": out / f"{self.name}.json"}
        paths["json"].write_text(dumps(self.to_dict()))
        if self.figure is not None:
            paths["png"] = out / f"{self.name}.png"
            paths["png"].write_bytes(self.figure_png())
        return paths


class Runs:
    """The runs behind an experiment: ``runs(spec)`` runs ``spec`` with `run_spec` and keeps its dict
    (once per distinct spec, by digest) for ``Result.specs``.

    The spec that runs is the one read back from its own JSON, so what is stored is exactly what ran.
    ``objective``: the spec's objective built by the caller, for objectives the landscape registry
    does not name (passed on to `run_spec`).
    """

    def __init__(self) -> None:
        self.specs: list[dict] = []
        self._digests: set[str] = set()

    def __call__(
        self, spec: RunSpec, progress: Progress | None = None, *, objective: Landscape | None = None
    ) -> Trajectory:
        spec = RunSpec.from_json(spec.to_json())
        if spec.digest not in self._digests:
            self._digests.add(spec.digest)
            self.specs.append(spec.to_dict())
        return run_spec(spec, progress, landscape=objective)


def dumps(data: dict[str, Any]) -> str:
    """A result's JSON text: indented, except that each of its ``specs`` is one compact line (a spec
    may hold per-particle lists)."""
    specs = data.get("specs")
    if not specs:
        return json.dumps(data, indent=2, default=_jsonable)
    rest = {key: value for key, value in data.items() if key != "specs"}
    text = json.dumps(rest, indent=2, default=_jsonable)
    lines = ",\n".join("    " + json.dumps(s, separators=(",", ":"), default=_jsonable) for s in specs)
    return text[: -len("\n}")] + ',\n  "specs": [\n' + lines + "\n  ]\n}"


def _jsonable(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "__dict__"):
        return vars(value)
    return str(value)


def plain(value: Any) -> Any:
    """numpy scalars and arrays as Python floats and lists (clean JSON and CLI output), recursively."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if hasattr(value, "tolist"):  # numpy arrays and scalars, torch tensors
        return plain(value.tolist())
    return value


def checks_line(checks: dict[str, bool]) -> str:
    """One sentence for an explanation: all checks passed, or which failed."""
    failed = [name for name, ok in checks.items() if not ok]
    return "All checks passed." if not failed else "Failed: " + "; ".join(failed) + "."


def verdict_from(checks: dict[str, bool]) -> Verdict:
    """held if every check passed, did not hold if none did, partly held otherwise."""
    passed = sum(bool(v) for v in checks.values())
    if passed == len(checks):
        return "held"
    return "did not hold" if passed == 0 else "partly held"
