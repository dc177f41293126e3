"""The registry of named landscapes: name -> factory with documented parameters and defaults."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from descent._errors import check_number, invalid, listed
from descent.landscapes._base import Landscape

CATEGORIES = ("seed", "theory", "classic")


@dataclass(frozen=True)
class LandscapeEntry:
    """A registered landscape: ``factory(**params) -> Landscape`` with its parameter defaults."""

    name: str
    factory: Callable[..., Landscape]
    defaults: dict[str, float]
    category: str
    summary: str
    ready: Callable[[], bool] | None = None  # None: always quick to build; else is it quick now?

    def quick_to_build(self) -> bool:
        """Is building it with its defaults quick now? (A landscape trained at first use is not,
        until its table is cached: a listing shows what it knows without building it.)"""
        return self.ready is None or self.ready()

    def build(self, **params: float) -> Landscape:
        """``factory(**params)``, remembering the name and parameters as the landscape's recipe."""
        unknown = set(params) - set(self.defaults)
        if unknown:
            allowed = ", ".join(self.defaults) or "no parameters"
            raise invalid(f"{self.name} parameter", sorted(unknown)[0], f"one of: {allowed}")
        values = {k: check_number(f"{self.name}.{k}", v) for k, v in params.items()}
        if "dim" in values:
            if values["dim"] != int(values["dim"]) or values["dim"] < 1:
                raise invalid(f"{self.name}.dim", params["dim"], "an integer >= 1")
            values["dim"] = int(values["dim"])
        return self.factory(**values).with_recipe(rebuild_landscape, self.name, values)


LANDSCAPES: dict[str, LandscapeEntry] = {}


def register(name: str, category: str, summary: str, **defaults: float) -> Callable:
    """Decorator: add a landscape factory to the registry under ``name``."""
    if category not in CATEGORIES:
        raise invalid("category", category, f"one of: {listed(CATEGORIES)}")

    def wrap(factory: Callable[..., Landscape]) -> Callable[..., Landscape]:
        if name in LANDSCAPES:
            raise invalid("landscape name", name, "a name not yet registered")
        LANDSCAPES[name] = LandscapeEntry(name, factory, dict(defaults), category, summary)
        return factory

    return wrap


def get_landscape(name: str, **params: float) -> Landscape:
    """Build the registered landscape ``name`` with parameters overriding its defaults.

    >>> get_landscape("quadratic", kappa=100).params["kappa"]
    100.0
    """
    if name not in LANDSCAPES:
        raise invalid("landscape", name, f"one of: {listed(sorted(LANDSCAPES))} or a formula in x, y")
    return LANDSCAPES[name].build(**params)


def rebuild_landscape(name: str, params: dict[str, float]) -> Landscape:
    """``get_landscape(name, **params)``: how a registered landscape is unpickled."""
    return get_landscape(name, **params)


def landscape_names(category: str | None = None) -> list[str]:
    """Registered names, the seeds' first, then theory, then classic; optionally of one category."""
    names = [n for n, e in LANDSCAPES.items() if category is None or e.category == category]
    return sorted(names, key=lambda n: CATEGORIES.index(LANDSCAPES[n].category))


def slow_at_first_use(name: str, ready: Callable[[], bool]) -> None:
    """Mark the registered landscape ``name`` as slow to build at first use (a network trained, a table
    tabulated): ``ready()`` says whether building it with its defaults is quick now."""
    LANDSCAPES[name] = replace(LANDSCAPES[name], ready=ready)
