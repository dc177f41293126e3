"""One message format for bad input: what was wrong, the value, what is allowed."""

from __future__ import annotations


class DescentError(ValueError):
    """Raised for bad input anywhere in descent (a ValueError, so callers may catch either).

    One built by ``invalid`` also keeps its parts, ``parameter``, ``value`` and ``allowed`` (else
    None), so a front end can name the parameter as its user typed it (the CLI: ``--lr``)."""

    def __init__(
        self,
        message: str = "",
        *,
        parameter: str | None = None,
        value: object = None,
        allowed: str | None = None,
    ) -> None:
        super().__init__(message)
        self.parameter, self.value, self.allowed = parameter, value, allowed


def listed(names: object) -> str:
    """Names for a message, as a reader writes them: ``listed(["gd", "adam"]) == "gd, adam"``."""
    return ", ".join(str(name) for name in names)  # type: ignore[attr-defined]


def invalid(parameter: str, value: object, allowed: str) -> DescentError:
    """Build the error for a bad value: ``invalid('lr', -1, 'a number > 0')``."""
    message = f"invalid {parameter}={value!r}: expected {allowed}"
    return DescentError(message, parameter=parameter, value=value, allowed=allowed)


def check_number(
    parameter: str,
    value: object,
    low: float | None = None,
    high: float | None = None,
    *,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """Return ``float(value)`` or raise ``invalid`` if it is not a finite number within [low, high]."""
    import math

    lo = "(" if low_open else "["
    hi = ")" if high_open else "]"
    upper = "inf)" if high is None else f"{high}{hi}"
    allowed = f"a finite number in {lo}{'-inf' if low is None else low}, {upper}"
    if isinstance(value, bool):
        raise invalid(parameter, value, allowed)
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise invalid(parameter, value, allowed) from None
    if not math.isfinite(number):
        raise invalid(parameter, value, allowed)
    if low is not None and (number < low or (low_open and number == low)):
        raise invalid(parameter, value, allowed)
    if high is not None and (number > high or (high_open and number == high)):
        raise invalid(parameter, value, allowed)
    return number
