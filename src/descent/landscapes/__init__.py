"""Energy landscapes: the seeds' double well, plateau and saddle, quadratics, classic test functions
and user formulas, all behind one `Landscape` interface and one registry.

Every built-in landscape (but the data-based logistic risk) is a formula in the same safe language as
user formulas: one text and its parameters give an expression tree (`expr`), whose value is plain
torch and whose gradient is computed by reverse mode over the tree (`evaluate`)."""

from descent.landscapes import classic, network_slice, seeds, thermal  # noqa: F401  (importing a module registers its landscapes)
from descent.landscapes._base import CriticalPoint, Landscape, refine_critical_point
from descent.landscapes._registry import LANDSCAPES, LandscapeEntry, get_landscape, landscape_names, register
from descent.landscapes.formula import (
    Formula,
    FormulaError,
    formula_landscape,
    parse_formula,
    resolve_landscape,
)
from descent.landscapes.seeds import quadratic_matrix

__all__ = [
    "LANDSCAPES",
    "CriticalPoint",
    "Formula",
    "FormulaError",
    "Landscape",
    "LandscapeEntry",
    "formula_landscape",
    "get_landscape",
    "landscape_names",
    "parse_formula",
    "quadratic_matrix",
    "refine_critical_point",
    "register",
    "resolve_landscape",
]

# the landscapes with data (logistic-risk, sharp-flat-risk) register when their package is imported:
# import it here, so that every way into the registry sees them
from descent import objectives as _objectives  # noqa: E402, F401
