"""The thermal landscapes: quartic well (1-D and 2-D), sharp-flat, logistic risk.

Tolerances: analytic gradients against autograd to 1e-12; stationary points to 1e-10; curvatures
against their closed forms to 1e-8 (finite differences of the analytic gradient).
"""

import math

import pytest
import torch

from descent import DescentError
from descent.landscapes import get_landscape
from descent.landscapes.thermal import (
    breast_cancer_features,
    logistic_per_example_gradients,
    quartic_roots,
    sharp_flat_points,
)

torch.set_num_threads(1)
CASES = [
    ("quartic-well", {}),
    ("quartic-well", {"tilt": 0.3, "dim": 1}),
    ("sharp-flat", {}),
    ("sharp-flat", {"dim": 1, "height": 0.25}),
    ("sharp-flat", {"skew": 0.0}),
    ("logistic-risk", {}),
]


@pytest.mark.parametrize("name, params", CASES)
def test_gradient_is_autograd_and_points_are_stationary(name, params):
    land = get_landscape(name, **params)
    x = land.random_starts(64, torch.Generator().manual_seed(0))
    assert torch.allclose(land.gradient(x), land.autograd_gradient(x), atol=1e-12, rtol=1e-12)
    for point in land.critical_points:
        grad = land.gradient(torch.tensor([point.position], dtype=torch.float64))
        assert float(grad.norm()) < 1e-10, point
    assert land.value(x.float()).dtype == torch.float32  # runs in float32 too


def test_quartic_well_matches_the_seeds_double_well_in_two_dimensions():
    seeds = get_landscape("double-well", tilt=0.3)
    mine = get_landscape("quartic-well", tilt=0.3)
    x = seeds.random_starts(32, torch.Generator().manual_seed(1))
    assert torch.allclose(seeds.value(x), mine.value(x)) and torch.allclose(
        seeds.gradient(x), mine.gradient(x)
    )
    one = get_landscape("quartic-well", tilt=0.3, dim=1)
    assert torch.allclose(one.value(x[:, :1]), mine.value(x) - x[:, 1] ** 2)
    a, b, m = quartic_roots(0.3)
    assert [p.position[0] for p in one.critical_points] == pytest.approx([a, m, b])
    assert quartic_roots(0.0) == pytest.approx((-1.0, 0.0, 1.0), abs=1e-12)
    with pytest.raises(DescentError, match="tilt"):
        get_landscape("quartic-well", tilt=2.0)
    with pytest.raises(DescentError, match="dim"):
        get_landscape("quartic-well", dim=3)


@pytest.mark.parametrize("skew", [0.0, 0.3, 0.5])
def test_sharp_flat_has_equal_depths_and_the_stated_curvatures(skew):
    height = 0.25
    land = get_landscape("sharp-flat", height=height, skew=skew, dim=1)
    geo = sharp_flat_points(height, skew)
    assert land.point("flat").value == pytest.approx(0.0, abs=1e-14)
    assert land.point("sharp").value == pytest.approx(0.0, abs=1e-14)
    assert land.point("barrier").value == pytest.approx(height)
    eps = 1e-5
    for key, where in (("curv_flat", geo["flat"]), ("curv_sharp", geo["sharp"]), ("curv_barrier", 0.0)):
        pair = torch.tensor([[where + eps], [where - eps]], dtype=torch.float64)
        g = land.gradient(pair)[:, 0]
        assert float(g[0] - g[1]) / (2 * eps) == pytest.approx(geo[key], rel=1e-7)
    if skew:
        ratio = geo["curv_sharp"] / geo["curv_flat"]
        assert ratio == pytest.approx(((1 + skew) / (1 - skew)) ** 2)


def test_logistic_risk_is_the_mean_of_its_per_example_losses():
    land = get_landscape("logistic-risk")
    features, labels = breast_cancer_features()
    assert features.shape == (569, 2) and set(labels.tolist()) == {-1.0, 1.0}
    w = land.random_starts(5, torch.Generator().manual_seed(2))
    per_example = logistic_per_example_gradients(w, features.expand(5, -1, -1), labels.expand(5, -1))
    assert torch.allclose(per_example.mean(1), land.gradient(w), atol=1e-13)
    margin = labels * (w @ features.T)
    assert torch.allclose(torch.log1p(torch.exp(-margin)).mean(1), land.value(w), atol=1e-13)
    fit = torch.tensor([land.point("fit").position], dtype=torch.float64)
    hessian = land.hessian(fit)[0]
    assert bool((torch.linalg.eigvalsh(hessian) > 0).all())
    assert math.isfinite(land.point("fit").value)
