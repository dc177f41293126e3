"""The rows of an experiment's result: numbers, and checks with one criterion at every size.

A statistical check allows ``z`` standard errors (computed from the run's own sample) plus a ``bias``
only where a closed form or a fit gives it: ``|value - theory| <= z se + bias``. The quick size and the
full size assert the same criterion; only the SE differs. A deterministic number (a step count, a
rate from an exact recurrence) has no SE and is checked against a stated relative or absolute
tolerance. Each check reports its power: the smallest shift of the theory value, relative to
``|theory|``, that it would detect with probability about 95 %,

    two-sided:  (tolerance + 1.645 se) / |theory|,
    one-sided:  (tolerance + 1.645 se) / |bound|    (how far past the bound the truth must lie to pass).

>>> row = agrees("tau", "mean escape time", 102.0, 100.0, se=2.0)
>>> row.passed, row.tolerance, round(row.power, 4)
(True, 6.0, 0.0929)
>>> agrees("k", "crossing step", 212, 200, rel=0.02).passed
False
>>> exceeds("speedup", "speed-up over GD", 3.0, 1.0, se=0.5).criterion
'measured > 1 + 3 SE'
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from descent.experiments._base import About, Row

Z = 3.0  # standard errors a statistical check allows
Z_POWER = 1.6448536269514722  # one-sided 95 % normal quantile, for the power


def number(
    id: str,
    label: str,
    value: float,
    *,
    se: float | None = None,
    theory: float | None = None,
    unit: str = "",
    group: str = "",
    key: bool = False,
) -> Row:
    """A reported number (not a check), with its SE and a theory value where there is one."""
    return Row(id, label, _float(value), _opt(se), _opt(theory), unit=unit, group=group, key=key)


def agrees(
    id: str,
    label: str,
    value: float,
    theory: float,
    *,
    se: float | None = None,
    z: float = Z,
    bias: float = 0.0,
    rel: float | None = None,
    absolute: float | None = None,
    about: About = "theory",
    unit: str = "",
    group: str = "",
    key: bool = False,
    if_pass: str = "",
    if_fail: str = "",
) -> Row:
    """Two-sided: ``|value - theory| <= tolerance``.

    Statistical (``se`` given): tolerance ``z se + bias``. Deterministic: ``rel |theory|`` or
    ``absolute`` (one of them).
    """
    value, theory = _float(value), _float(theory)
    if se is not None:
        if rel is not None or absolute is not None:
            raise ValueError(f"{id}: a statistical check takes z and bias, not rel or absolute")
        se = _float(se)
        tolerance = z * se + bias
        criterion = f"|measured - theory| <= {z:g} SE" + (f" + bias {bias:.3g}" if bias else "")
    elif (rel is None) == (absolute is None):
        raise ValueError(f"{id}: a deterministic check takes exactly one of rel or absolute")
    elif rel is not None:
        tolerance = rel * abs(theory)
        criterion = f"|measured - theory| <= {_percent(rel)} of theory"
    else:
        tolerance = float(absolute)  # type: ignore[arg-type]
        criterion = "measured = theory" if tolerance == 0 else f"|measured - theory| <= {tolerance:g}"
    passed = _all_finite(value, theory, tolerance) and abs(value - theory) <= tolerance
    return Row(
        id,
        label,
        value,
        se,
        theory,
        tolerance,
        criterion,
        bool(passed),
        _power(tolerance, se, theory),
        about,
        unit,
        group,
        key,
        if_pass if passed else if_fail,
    )


def exceeds(
    id: str,
    label: str,
    value: float,
    bound: float,
    *,
    se: float | None = None,
    z: float = Z,
    margin: float = 0.0,
    about: About = "claim",
    unit: str = "",
    group: str = "",
    key: bool = False,
    if_pass: str = "",
    if_fail: str = "",
) -> Row:
    """One-sided: ``value > bound + z se + margin`` (``value > bound + margin`` without an SE)."""
    return _one_sided(id, label, value, bound, se, z, margin, about, unit, group, key, if_pass, if_fail, +1)


def below(
    id: str,
    label: str,
    value: float,
    bound: float,
    *,
    se: float | None = None,
    z: float = Z,
    margin: float = 0.0,
    about: About = "claim",
    unit: str = "",
    group: str = "",
    key: bool = False,
    if_pass: str = "",
    if_fail: str = "",
) -> Row:
    """One-sided: ``value < bound - z se - margin`` (``value < bound - margin`` without an SE)."""
    return _one_sided(id, label, value, bound, se, z, margin, about, unit, group, key, if_pass, if_fail, -1)


def _one_sided(id, label, value, bound, se, z, margin, about, unit, group, key, if_pass, if_fail, sign):
    value, bound = _float(value), _float(bound)
    se = None if se is None else _float(se)
    tolerance = (z * se if se is not None else 0.0) + margin
    word = ">" if sign > 0 else "<"
    plus = "+" if sign > 0 else "-"
    extra = []
    if se is not None:
        extra.append(f"{z:g} SE")
    if margin:
        extra.append(f"{margin:.3g}")
    criterion = f"measured {word} {bound:.4g}" + "".join(f" {plus} {e}" for e in extra)
    passed = _all_finite(bound, tolerance) and not math.isnan(value) and sign * (value - bound) > tolerance
    return Row(
        id,
        label,
        value,
        se,
        bound,
        tolerance,
        criterion,
        bool(passed),
        _power(tolerance, se, bound),
        about,
        unit,
        group,
        key,
        if_pass if passed else if_fail,
    )


def mean_se(samples: Sequence[float]) -> tuple[float, float]:
    """The sample mean and its standard error ``sd/sqrt(n)`` (n >= 2)."""
    n = len(samples)
    if n < 2:
        raise ValueError(f"a standard error needs at least 2 samples, got {n}")
    mean = math.fsum(samples) / n
    variance = math.fsum((s - mean) ** 2 for s in samples) / (n - 1)
    return mean, math.sqrt(variance / n)


def share_se(successes: int, trials: int) -> tuple[float, float]:
    """A share ``k/n`` and its standard error ``sqrt(p (1 - p)/n)``, with ``p = (k + 1/2)/(n + 1)`` so
    that 0 of n and n of n still carry an error (Jeffreys' smoothing)."""
    if trials < 1:
        raise ValueError(f"a share needs at least 1 trial, got {trials}")
    smoothed = (successes + 0.5) / (trials + 1.0)
    return successes / trials, math.sqrt(smoothed * (1.0 - smoothed) / trials)


def _power(tolerance: float, se: float | None, theory: float) -> float | None:
    if theory == 0 or not _all_finite(tolerance, theory):
        return None
    return (tolerance + Z_POWER * (se or 0.0)) / abs(theory)


def _percent(rel: float) -> str:
    return f"{rel:.0%}" if rel >= 0.01 else f"{rel:.1e}"


def _float(value: float) -> float:
    return float(value)


def _opt(value: float | None) -> float | None:
    return None if value is None else float(value)


def _all_finite(*values: float | None) -> bool:
    return all(v is not None and math.isfinite(v) for v in values)
