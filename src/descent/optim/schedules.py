"""Learning-rate schedules: a schedule maps the step index k (0-based) to a factor on the base lr,
lr_k = lr * factor(k). Each is a small frozen dataclass that round-trips through a JSON dict.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from descent._errors import check_number, invalid, listed


def _check_count(parameter: str, value: object) -> None:
    """Raise unless ``value`` is an integer >= 1 (an int, or a float with no fractional part)."""
    ok = (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value == int(value)
        and value >= 1
    )
    if not ok:
        raise invalid(parameter, value, "an integer >= 1")


def _power(gamma: float, n: int) -> float:
    """gamma**n, inf where it overflows (gamma > 1 over many steps): the run diverges, it does not crash."""
    try:
        return gamma**n
    except OverflowError:
        return math.inf


@dataclass(frozen=True)
class Constant:
    """factor(k) = 1."""

    def __call__(self, k: int) -> float:
        return 1.0


@dataclass(frozen=True)
class Step:
    """factor(k) = gamma ** floor(k / every)."""

    every: int = 100
    gamma: float = 0.1

    def __post_init__(self) -> None:
        _check_count("step.every", self.every)
        check_number("step.gamma", self.gamma, 0.0, None, low_open=True)

    def __call__(self, k: int) -> float:
        return _power(self.gamma, k // int(self.every))


@dataclass(frozen=True)
class Exponential:
    """factor(k) = gamma ** k."""

    gamma: float = 0.999

    def __post_init__(self) -> None:
        check_number("exponential.gamma", self.gamma, 0.0, None, low_open=True)

    def __call__(self, k: int) -> float:
        return _power(self.gamma, k)


@dataclass(frozen=True)
class Cosine:
    """factor(k) = final + (1 - final) * (1 + cos(pi * min(k, total)/total)) / 2."""

    total: int = 1000
    final: float = 0.0

    def __post_init__(self) -> None:
        _check_count("cosine.total", self.total)
        check_number("cosine.final", self.final, 0.0, 1.0)

    def __call__(self, k: int) -> float:
        progress = min(k, self.total) / self.total
        return self.final + (1 - self.final) * 0.5 * (1 + math.cos(math.pi * progress))


@dataclass(frozen=True)
class Warmup:
    """Linear warm-up: factor(k) = (k + 1)/steps for k < steps, then ``then(k - steps)``."""

    steps: int = 100
    then: Schedule = field(default_factory=Constant)

    def __post_init__(self) -> None:
        _check_count("warmup.steps", self.steps)

    def __call__(self, k: int) -> float:
        if k < self.steps:
            return (k + 1) / self.steps
        return self.then(k - self.steps)


@dataclass(frozen=True)
class Sequence:
    """Composition in time: ``parts[0]`` for its ``lengths[0]`` steps, then ``parts[1]`` restarted, ...

    The last part runs for ever.
    """

    parts: tuple[Schedule, ...]
    lengths: tuple[int, ...]

    def __post_init__(self) -> None:
        if len(self.lengths) != len(self.parts) - 1:
            raise invalid(
                "sequence.lengths", self.lengths, f"{len(self.parts) - 1} lengths for {len(self.parts)} parts"
            )
        for length in self.lengths:
            _check_count("sequence.lengths", length)

    def __call__(self, k: int) -> float:
        start = 0
        for part, length in zip(self.parts, self.lengths):
            if k < start + length:
                return part(k - start)
            start += length
        return self.parts[-1](k - start)


@dataclass(frozen=True)
class Product:
    """Composition by multiplication: factor(k) = prod_i parts[i](k)."""

    parts: tuple[Schedule, ...]

    def __call__(self, k: int) -> float:
        out = 1.0
        for part in self.parts:
            out *= part(k)
        return out


Schedule = Constant | Step | Exponential | Cosine | Warmup | Sequence | Product
KINDS: dict[str, type] = {
    "constant": Constant,
    "step": Step,
    "exponential": Exponential,
    "cosine": Cosine,
    "warmup": Warmup,
    "sequence": Sequence,
    "product": Product,
}


def schedule_to_dict(schedule: Schedule) -> dict:
    """A JSON-friendly dict {"kind": ..., **fields}; nested schedules become nested dicts."""
    kind = next(k for k, cls in KINDS.items() if isinstance(schedule, cls))
    if isinstance(schedule, Warmup):
        return {"kind": kind, "steps": schedule.steps, "then": schedule_to_dict(schedule.then)}
    if isinstance(schedule, (Sequence, Product)):
        out: dict[str, object] = {"kind": kind, "parts": [schedule_to_dict(p) for p in schedule.parts]}
        if isinstance(schedule, Sequence):
            out["lengths"] = list(schedule.lengths)
        return out
    return {"kind": kind, **asdict(schedule)}


def schedule_from_dict(spec: dict | None) -> Schedule:
    """Inverse of `schedule_to_dict`; ``None`` means constant."""
    if spec is None:
        return Constant()
    if not isinstance(spec, dict) or spec.get("kind") not in KINDS:
        raise invalid("schedule", spec, f"a dict with 'kind' one of: {listed(sorted(KINDS))}")
    fields = {k: v for k, v in spec.items() if k != "kind"}
    kind = spec["kind"]
    try:
        if kind == "warmup":
            return Warmup(steps=fields.get("steps", 100), then=schedule_from_dict(fields.get("then")))
        if kind in ("sequence", "product"):
            parts = tuple(schedule_from_dict(p) for p in fields.get("parts", []))
            if kind == "sequence":
                return Sequence(parts, tuple(fields.get("lengths", [])))
            return Product(parts)
        return KINDS[kind](**fields)
    except TypeError as error:
        raise invalid(f"schedule {kind}", fields, f"fields of {KINDS[kind].__name__}: {error}") from None


def parse_schedule(text: str) -> Schedule:
    """Parse the CLI form: ``kind[:key=value,...]``, parts joined by ``>`` run in sequence, where
    every part but the last carries ``for=STEPS``; ``warmup:steps=100>cosine:total=900``
    is warm-up then cosine.

    >>> parse_schedule("step:every=100,gamma=0.5")(250)
    0.25
    """
    text = text.strip()
    if not text:
        raise invalid("schedule", text, "kind[:key=value,...] with kind one of " + ", ".join(KINDS))
    pieces = [p.strip() for p in text.split(">")]
    parsed = [_parse_one(p) for p in pieces]
    if len(parsed) == 1:
        return parsed[0][0]
    first, *rest = parsed
    if isinstance(first[0], Warmup) and len(parsed) == 2:
        return Warmup(first[0].steps, parsed[1][0])
    lengths = []
    for _, length in parsed[:-1]:
        if length is None:
            raise invalid("schedule", text, "every part before '>' to carry for=STEPS (or be a warmup)")
        lengths.append(length)
    return Sequence(tuple(s for s, _ in parsed), tuple(lengths))


def _parse_one(piece: str) -> tuple[Schedule, int | None]:
    kind, _, args = piece.partition(":")
    kind = kind.strip()
    if kind not in KINDS or kind in ("sequence", "product"):
        raise invalid("schedule kind", kind, "one of constant, step, exponential, cosine, warmup")
    fields: dict[str, float] = {}
    for item in filter(None, (a.strip() for a in args.split(","))):
        key, sep, value = item.partition("=")
        if not sep:
            raise invalid(f"schedule {kind}", item, "key=value")
        fields[key.strip()] = check_number(f"schedule {kind}.{key.strip()}", value)
    length = fields.pop("for", None)
    if length is not None:
        _check_count(f"schedule {kind}.for", length)
    for key in ("every", "total", "steps"):
        if key in fields and fields[key] == int(fields[key]):  # 2.5 stays 2.5 and is refused, not truncated
            fields[key] = int(fields[key])
    try:
        schedule = KINDS[kind](**fields)
    except TypeError:
        raise invalid(f"schedule {kind}", sorted(fields), f"fields of {KINDS[kind].__name__}") from None
    return schedule, None if length is None else int(length)
