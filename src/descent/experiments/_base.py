"""What every experiment returns: typed rows, checks, a verdict derived from them, figures and specs.

An experiment module defines a frozen ``Config`` dataclass (its full size by default, with a
``quick()`` classmethod for a smaller size that asserts the same criteria), ``CLAIM`` (the seeds'
words it checks), ``PROTOCOL`` (what was run, in two sentences) and
``run(config, progress=None) -> Result``.

A `Result` holds `Row`s. A row is one measured number: its ``id`` (stable, for code), ``label`` (for
people), ``value``, standard error ``se`` (when statistical), ``theory`` (the independent value it is
compared with), and, when the row is a check, the ``tolerance``, the ``criterion`` in words, whether it
``passed`` and its ``power`` (the smallest relative shift of the theory value the check would detect).
Rows are made by the functions of `descent.experiments.rows`. A check is about either the seeds'
``claim`` (it may fail: the seeds can be wrong) or the ``theory`` (the simulation against a closed
form; a failure there is a bug in the instrument). The verdict follows from the claim checks alone
(`verdict_from`), and the explanation is the sentences the checks chose by passing or failing.

Every run behind an experiment's numbers is a `RunSpec` run by `run_spec` through :class:`Runs`, which
keeps each distinct spec; the result stores them (``Result.specs``), so any run can be replayed.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from descent._json import number_in, number_out, numbers_in, numbers_out
from descent.dynamics import Trajectory
from descent.experiments.figures import DPI
from descent.landscapes import Landscape
from descent.spec import RunSpec, run_spec

Verdict = Literal["held", "did not hold", "partly held"]
VERDICTS: tuple[str, ...] = ("held", "did not hold", "partly held")
About = Literal["claim", "theory"]
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Row:
    """One measured number of an experiment, and the check it is part of (when ``passed`` is set).

    ``tolerance``: the largest allowed ``|value - theory|`` (two-sided checks) or the margin by which
    ``value`` must clear ``theory`` (one-sided ones); ``criterion`` says which, in words. ``power``: the
    smallest shift of ``theory``, relative to ``|theory|``, that the check would detect with probability
    about 95 % (``None`` where the theory is 0). ``said``: the sentence this row adds to the
    explanation, already chosen by whether it passed.
    """

    id: str
    label: str
    value: float
    se: float | None = None
    theory: float | None = None
    tolerance: float | None = None
    criterion: str = ""
    passed: bool | None = None
    power: float | None = None
    about: About = "claim"
    unit: str = ""
    group: str = ""
    key: bool = False
    said: str = ""

    @property
    def is_check(self) -> bool:
        return self.passed is not None

    @property
    def reference(self) -> str:
        """What ``theory`` is: "bound" for a one-sided check, "theory" otherwise."""
        return "bound" if self.criterion.startswith(("measured >", "measured <")) else "theory"

    @property
    def deviation_se(self) -> float | None:
        """(value - theory) in standard errors, where both and a positive SE exist."""
        if self.theory is None or not self.se or not _finite(self.value) or not _finite(self.theory):
            return None
        return (self.value - self.theory) / self.se

    @property
    def relative_deviation(self) -> float | None:
        """(value - theory)/|theory|, where it is defined."""
        if self.theory is None or self.theory == 0 or not _finite(self.value) or not _finite(self.theory):
            return None
        return (self.value - self.theory) / abs(self.theory)

    def to_dict(self) -> dict[str, Any]:
        return {name: number_out(value) for name, value in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Row:
        known = {f.name for f in fields(cls)}
        return cls(**{name: number_in(value) for name, value in data.items() if name in known})


@dataclass
class Result:
    """An experiment's outcome: its rows, figures (matplotlib; the first is the one the report shows
    on its card), the configuration it ran and ``specs``: the `RunSpec` of every run behind the numbers
    (as dicts; `RunSpec.from_dict` rebuilds one, `run_spec` replays it)."""

    name: str
    claim: str
    protocol: str
    rows: list[Row]
    config: dict[str, Any] = field(default_factory=dict)
    figures: list[Any] = field(default_factory=list)
    specs: list[dict] = field(default_factory=list)

    def __post_init__(self) -> None:
        ids = [row.id for row in self.rows]
        repeated = sorted({i for i in ids if ids.count(i) > 1})
        if repeated:
            raise ValueError(f"{self.name}: row ids must be unique, repeated: {repeated}")
        self.config = plain(self.config)

    @property
    def checks(self) -> list[Row]:
        return [row for row in self.rows if row.is_check]

    @property
    def claim_checks(self) -> list[Row]:
        return [row for row in self.rows if row.is_check and row.about == "claim"]

    @property
    def theory_checks(self) -> list[Row]:
        return [row for row in self.rows if row.is_check and row.about == "theory"]

    @property
    def verdict(self) -> Verdict:
        return verdict_from(self.claim_checks)

    @property
    def explanation(self) -> str:
        """The sentences of the checks (each chosen by whether it passed), then the failed checks."""
        checks = [row for row in self.rows if row.is_check]
        sentences = [row.said for row in checks if row.said]
        failed = [row.label for row in checks if not row.passed]
        if failed:
            sentences.append("Failed: " + "; ".join(failed) + ".")
        return " ".join(sentences)

    @property
    def figure(self) -> Any:
        return self.figures[0] if self.figures else None

    def row(self, id: str) -> Row:
        for row in self.rows:
            if row.id == id:
                return row
        raise KeyError(f"{self.name} has no row {id!r}; it has {[r.id for r in self.rows]}")

    def value(self, id: str) -> float:
        return self.row(id).value

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "claim": self.claim,
            "protocol": self.protocol,
            "verdict": self.verdict,
            "explanation": self.explanation,
            "rows": [row.to_dict() for row in self.rows],
            "config": numbers_out(self.config),
            "specs": self.specs,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Result:
        """A result read back from its JSON (without its figures)."""
        return cls(
            data["name"],
            data["claim"],
            data.get("protocol", ""),
            [Row.from_dict(row) for row in data["rows"]],
            numbers_in(data.get("config", {})),
            [],
            data.get("specs", []),
        )

    def figure_png(self, index: int = 0, dpi: float | None = None) -> bytes:
        """Figure ``index`` as PNG bytes, at ``figures.DPI`` unless ``dpi`` is given."""
        if len(self.figures) <= index:
            return b""
        buffer = io.BytesIO()
        self.figures[index].savefig(buffer, format="png", dpi=dpi or DPI, bbox_inches="tight")
        return buffer.getvalue()

    def save(self, out: str | Path) -> dict[str, Path]:
        """Write ``NAME.json`` and ``NAME.png`` (and ``NAME-2.png``... for further figures) into
        ``out``; return their paths."""
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        paths = {"json": out / f"{self.name}.json"}
        paths["json"].write_text(dumps(self.to_dict()))
        for index in range(len(self.figures)):
            key = "png" if index == 0 else f"png{index + 1}"
            paths[key] = out / (f"{self.name}.png" if index == 0 else f"{self.name}-{index + 1}.png")
            paths[key].write_bytes(self.figure_png(index))
        return paths


def result_lines(result: Result) -> list[str]:
    """For the terminal: the key numbers beside their theory, each claim check, and the theory checks
    counted (each failed one named)."""
    lines = [_row_line(row) for row in result.rows if row.key]
    lines += [f"{'pass' if row.passed else 'FAIL'}  {row.label}" for row in result.claim_checks]
    theory = result.theory_checks
    if theory:
        lines.append(f"theory checks: {sum(bool(r.passed) for r in theory)} of {len(theory)} passed")
        lines += [f"FAIL  {row.label} ({row.criterion})" for row in theory if not row.passed]
    return lines


def _row_line(row: Row) -> str:
    text = f"{row.label}: {row.value:.6g}" + (f" +- {row.se:.2g}" if row.se else "")
    if row.theory is not None:
        text += f" ({row.reference} {row.theory:.6g})"
    return text


def verdict_from(checks: Iterable[Row]) -> Verdict:
    """held if every check passed, did not hold if none did, partly held otherwise; a verdict needs
    at least one check.

    >>> from descent.experiments.rows import agrees
    >>> verdict_from([agrees("a", "a", 1.0, 1.0, rel=0.01), agrees("b", "b", 2.0, 1.0, rel=0.01)])
    'partly held'
    >>> verdict_from([])
    Traceback (most recent call last):
    ...
    ValueError: a verdict needs at least one check
    """
    passed = [bool(row.passed) for row in checks if row.is_check]
    if not passed:
        raise ValueError("a verdict needs at least one check")
    if all(passed):
        return "held"
    return "did not hold" if not any(passed) else "partly held"


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


# --- JSON: one way for non-finite numbers (descent._json) ---------------------------------------------
def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def dumps(data: dict[str, Any]) -> str:
    """A result's JSON text: indented, each of its ``rows`` and ``specs`` on one compact line (a spec
    may hold per-particle lists); non-finite floats as "inf", "-inf", "nan"."""
    data = numbers_out(plain(data))
    parts = []
    for key, value in data.items():
        if key in ("rows", "specs") and value:
            items = ",\n".join(
                "    " + json.dumps(item, separators=(",", ":"), allow_nan=False) for item in value
            )
            parts.append(f"  {json.dumps(key)}: [\n{items}\n  ]")
        else:
            nested = json.dumps(value, indent=2, allow_nan=False).replace("\n", "\n  ")
            parts.append(f"  {json.dumps(key)}: {nested}")
    return "{\n" + ",\n".join(parts) + "\n}"


def plain(value: Any) -> Any:
    """numpy scalars and arrays as Python floats and lists (clean JSON and CLI output), recursively."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if hasattr(value, "tolist"):  # numpy arrays and scalars, torch tensors
        return plain(value.tolist())
    return value
