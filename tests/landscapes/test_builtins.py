"""Every built-in landscape is a formula: its text is its source, a particle's value and gradient do not
depend on the batch, the gradient is torch's autograd of the value, and it pickles as its recipe."""

import copy
import dataclasses
import math
import pickle

import pytest
import torch

from descent.landscapes import LANDSCAPES, Landscape, formula_landscape, get_landscape, landscape_names
from descent.landscapes.formula import Formula, parse_formula

torch.set_num_threads(1)

DATA_BASED = (
    "logistic-risk",
    "sharp-flat-risk",
    "digits-slice",
    "digits-mlp",
    "breast-cancer-mlp",
)  # with data, or tabulated (not formulas)
FORMULAS = [name for name in landscape_names() if name not in DATA_BASED]
N_DIM = ("sphere", "rosenbrock", "rastrigin", "ackley", "styblinski-tang")
CASES = (
    [(name, {}) for name in FORMULAS]
    + [(name, {"dim": dim}) for name in N_DIM for dim in (3, 6)]
    + [(name, {"dim": 1}) for name in N_DIM if name != "rosenbrock"]
    + [
        ("double-well", {"tilt": 0.7}),
        ("plateau", {"slope": 0.1, "length": 4.0, "depth": 2.0, "width": 0.25}),
        ("saddle", {"curvature": 2.5}),
        ("saddle-bounded", {"curvature": 0.5}),
        ("quadratic", {"kappa": 50.0, "mu": 0.5, "angle": 0.4}),
        ("quadratic", {"kappa": 100.0, "dim": 5}),
        ("quadratic", {"dim": 1}),
        ("quartic-well", {"tilt": 0.2, "dim": 1}),
        ("sharp-flat", {"height": 0.25, "skew": 0.3, "dim": 1}),
        ("sharp-flat", {"skew": 0.0}),
    ]
)
IDS = [f"{name}{params or ''}" for name, params in CASES]


def build(name: str, params: dict) -> Landscape:
    return get_landscape(name, **params)


def starts(landscape: Landscape, n: int, seed: int, dtype=torch.float64) -> torch.Tensor:
    return landscape.random_starts(n, torch.Generator().manual_seed(seed)).to(dtype)


def test_every_registered_landscape_but_the_data_based_one_is_a_formula():
    assert set(FORMULAS) >= {"double-well", "plateau", "saddle", "saddle-bounded", "quadratic"}
    assert set(FORMULAS) >= {"quartic-well", "sharp-flat", *N_DIM, "himmelblau", "eggholder"}
    regularized = [name for name in FORMULAS if name.endswith("-l2")]  # descent.objectives.regularized
    assert len(FORMULAS) - len(regularized) == 22 and len(regularized) == 6
    for name in FORMULAS:
        assert isinstance(get_landscape(name).energy, Formula), name
    assert not isinstance(get_landscape("logistic-risk").energy, Formula)


@pytest.mark.parametrize(("name", "params"), CASES, ids=IDS)
def test_the_formula_text_is_the_source(name, params):
    """Parsing the landscape's ``formula`` text again gives the very same values and gradients."""
    landscape = build(name, params)
    energy = landscape.energy
    assert landscape.formula == energy.text and energy.dim == landscape.dim
    again = parse_formula(landscape.formula, energy.variables, matrices=energy.matrices)
    x = starts(landscape, 64, seed=1)
    value, grad = landscape.value_and_grad(x)
    value_again, grad_again = again.value_and_grad(x)
    assert torch.equal(value, value_again) and torch.equal(grad, grad_again)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize(("name", "params"), CASES, ids=IDS)
def test_a_batch_of_37_equals_each_point_alone(name, params, dtype):
    """A particle's value and gradient are bit-for-bit the same in a batch of 37 and on its own."""
    landscape = build(name, params)
    x = starts(landscape, 37, seed=3, dtype=dtype)
    value, grad = landscape.value_and_grad(x)
    assert value.shape == (37,) and grad.shape == (37, landscape.dim)
    for i in range(37):
        value_one, grad_one = landscape.value_and_grad(x[i : i + 1].clone())
        assert torch.equal(value_one, value[i : i + 1]), i
        assert torch.equal(grad_one, grad[i : i + 1]), i
    assert torch.equal(landscape.value(x), value)


@pytest.mark.parametrize(("name", "params"), CASES, ids=IDS)
def test_the_gradient_is_autograd_of_the_value(name, params):
    """Reverse mode over the formula against torch's autograd of ``value``: rtol 1e-12 for the seeds'
    and thermal landscapes, 1e-10 for the classic functions (Goldstein-Price's values reach 1e6)."""
    landscape = build(name, params)
    x = starts(landscape, 300, seed=5)
    tol = 1e-10 if LANDSCAPES[name].category == "classic" else 1e-12
    value, grad = landscape.value_and_grad(x)
    torch.testing.assert_close(grad, landscape.autograd_gradient(x), rtol=tol, atol=tol)
    assert bool(torch.isfinite(value).all()) and bool(torch.isfinite(grad).all())


@pytest.mark.parametrize(("name", "params"), CASES, ids=IDS)
def test_known_points_survive_the_rewrite(name, params):
    """Every listed point's value is the landscape's value there; smooth interior ones are stationary."""
    landscape = build(name, params)
    assert landscape.critical_points
    for point in landscape.critical_points:
        x = torch.tensor([point.position], dtype=torch.float64)
        assert point.value == pytest.approx(float(landscape.value(x)[0]), abs=1e-12)
        if point.smooth and not point.on_boundary:
            assert float(landscape.gradient(x).norm()) < 1e-8, point


# --- pickling ---------------------------------------------------------------------------------------------
PICKLED = [*CASES, ("logistic-risk", {"l2": 0.01})]


@pytest.mark.parametrize(("name", "params"), PICKLED, ids=[f"{n}{p or ''}" for n, p in PICKLED])
def test_pickles_as_its_recipe_and_gives_the_same_values(name, params):
    landscape = build(name, params)
    data = pickle.dumps(landscape)
    assert b"rebuild_landscape" in data and len(data) < 2000  # the name and parameters, not functions
    back = pickle.loads(data)
    assert back.name == landscape.name and back.params == landscape.params
    assert back.formula == landscape.formula and back.bounds == landscape.bounds
    assert back.critical_points == landscape.critical_points
    assert (back.default_start, back.default_lr) == (landscape.default_start, landscape.default_lr)
    x = starts(landscape, 20, seed=7)
    for mine, theirs in zip(landscape.value_and_grad(x), back.value_and_grad(x)):
        assert torch.equal(mine, theirs)


def test_formula_landscapes_pickle_as_text_box_start_and_lr():
    landscape = formula_landscape(
        "(x**2 - 1)**2 + sin(3*y) + sum(x[i]**4 for i in range(d))/10", bounds=(-2, 2)
    )
    back = pickle.loads(pickle.dumps(landscape))
    assert back.formula == landscape.formula and back.bounds == ((-2.0, 2.0), (-2.0, 2.0))
    assert back.default_start == landscape.default_start and back.default_lr == landscape.default_lr
    assert back.critical_points == landscape.critical_points
    x = starts(landscape, 20, seed=8)
    assert torch.equal(back.value(x), landscape.value(x))
    three = formula_landscape("x1**2 + x2**2 + (x3 - 1)**2", start=(1, 1, 1), lr=0.05)
    back = pickle.loads(pickle.dumps(three))
    assert back.dim == 3 and back.default_start == (1.0, 1.0, 1.0) and back.default_lr == 0.05
    formula = parse_formula("x @ A @ x", ("a", "b"), matrices={"A": [[2.0, 1.0], [1.0, 3.0]]})
    again = pickle.loads(pickle.dumps(formula))
    assert torch.equal(again(x), formula(x)) and again.text == formula.text


def test_a_changed_landscape_does_not_pickle_as_the_original():
    """``dataclasses.replace`` (a noisy gradient, say) drops the recipe: pickling then fails loudly
    on the function instead of silently rebuilding the unchanged landscape."""
    landscape = get_landscape("sharp-flat", dim=1)

    def noisy(x):
        return landscape.gradient(x) + 1.0

    changed = dataclasses.replace(landscape, grad_fn=noisy, name="sharp-flat (noisy)")
    assert changed.recipe == ()
    with pytest.raises((pickle.PicklingError, AttributeError, TypeError)):
        pickle.dumps(changed)
    renamed = dataclasses.replace(landscape, name="renamed")  # still a formula: pickles field by field
    assert pickle.loads(pickle.dumps(renamed)).name == "renamed"


# --- the objective interface ------------------------------------------------------------------------------
def test_value_and_grad_ignores_batch_and_there_is_no_data():
    landscape = get_landscape("double-well")
    x = starts(landscape, 10, seed=9)
    value, grad = landscape.value_and_grad(x)
    value_b, grad_b = landscape.value_and_grad(x, batch=torch.arange(3))
    assert torch.equal(value, value_b) and torch.equal(grad, grad_b)
    assert landscape.data_size is None and get_landscape("logistic-risk").data_size == 569
    old_name = landscape.value_and_gradient(x)
    assert torch.equal(old_name[0], value) and torch.equal(old_name[1], grad)
    with pytest.raises(ValueError, match=r"shape \[N, 2\]"):
        landscape.value_and_grad(torch.zeros(3, 3, dtype=torch.float64))


def test_a_replaced_gradient_is_the_one_used():
    """A landscape given another gradient (how experiments add mini-batch noise) uses it in the
    simulation's call; the value is still the formula's."""
    landscape = get_landscape("sharp-flat", dim=1)
    base = landscape.grad_fn
    x = starts(landscape, 5, seed=10)
    shifted = dataclasses.replace(landscape, grad_fn=lambda w: base(w) + 0.5)
    value, grad = shifted.value_and_grad(x)
    assert torch.equal(value, landscape.value(x))
    assert torch.equal(grad, landscape.gradient(x) + 0.5)
    assert torch.equal(shifted.gradient(x), grad)


def test_copies_are_the_same_immutable_landscape():
    landscape = get_landscape("rastrigin", dim=4)
    assert copy.copy(landscape) is landscape and copy.deepcopy(landscape) is landscape


def test_quadratic_is_x_A_x_over_2_with_its_matrix():
    landscape = get_landscape("quadratic", kappa=20.0, mu=0.5, angle=math.pi / 5, dim=3)
    assert landscape.formula == "x @ A @ x / 2"
    a = landscape.energy.matrices["A"]
    assert torch.equal(a, a.T)
    torch.testing.assert_close(
        torch.linalg.eigvalsh(a), torch.tensor([0.5, 0.5 * 20**0.5, 10.0], dtype=a.dtype)
    )
    x = starts(landscape, 30, seed=11)
    value, grad = landscape.value_and_grad(x)
    torch.testing.assert_close(value, 0.5 * torch.einsum("ni,ij,nj->n", x, a, x), rtol=1e-14, atol=1e-14)
    torch.testing.assert_close(grad, x @ a, rtol=1e-14, atol=1e-14)
