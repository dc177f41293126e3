"""JSON with one way for non-finite numbers: strict JSON has no NaN or infinity, so every file this
package writes stores them as the strings ``"nan"``, ``"inf"`` and ``"-inf"`` and reads them back.

>>> numbers_out({"loss": float("nan"), "steps": [1, float("inf")]})
{'loss': 'nan', 'steps': [1, 'inf']}
>>> numbers_in({"loss": "nan"})["loss"] != numbers_in({"loss": "nan"})["loss"]
True
"""

from __future__ import annotations

import math
from typing import Any

NON_FINITE = {"inf": math.inf, "-inf": -math.inf, "nan": math.nan}


def number_out(value: Any) -> Any:
    """A float as JSON: finite as itself, non-finite as the string "inf", "-inf" or "nan"."""
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return value


def number_in(value: Any) -> Any:
    """The inverse of `number_out`."""
    return NON_FINITE[value] if isinstance(value, str) and value in NON_FINITE else value


def numbers_out(value: Any) -> Any:
    """`number_out` through dicts (keys as strings), lists and tuples."""
    if isinstance(value, dict):
        return {str(k): numbers_out(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [numbers_out(v) for v in value]
    return number_out(value)


def numbers_in(value: Any) -> Any:
    """`number_in` through dicts and lists."""
    if isinstance(value, dict):
        return {k: numbers_in(v) for k, v in value.items()}
    if isinstance(value, list):
        return [numbers_in(v) for v in value]
    return number_in(value)
