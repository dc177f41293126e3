"""Lazy package exports (PEP 562): a package lists ``{name: module}`` and its names are imported on
first use, so importing the package stays cheap.

>>> getattr_, dir_ = lazy_exports("pkg", {"sqrt": "math"}, {})
>>> getattr_("sqrt")(4.0), "sqrt" in dir_()
(2.0, True)
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def lazy_exports(
    package: str, exports: dict[str, str], namespace: dict[str, Any]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The module-level ``__getattr__`` and ``__dir__`` of ``package``: a name of ``exports`` is read
    from its module at first use and kept in ``namespace`` (the package's globals), so later lookups
    do not come here."""

    def __getattr__(name: str) -> Any:
        if name in exports:
            value = getattr(importlib.import_module(exports[name]), name)
            namespace[name] = value
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted([*namespace, *exports])

    return __getattr__, __dir__
