"""EmpiricalRisk: the closed-form value and gradient against torch autograd and against the mean of the
per-example losses, on the full data and on each particle's own mini-batch."""

import pickle

import pytest
import torch

from descent.landscapes import get_landscape
from descent.objectives import EmpiricalRisk, empirical_risk, logistic_risk

torch.set_num_threads(1)


def per_example_loss(kind, w, x, y):
    z = (w * x).sum(-1)
    return torch.nn.functional.softplus(-y * z) if kind == "logistic" else 0.5 * (z - y) ** 2


@pytest.mark.parametrize("kind", ["logistic", "squared"])
def test_value_and_gradient_equal_autograd_on_every_batch(kind):
    generator = torch.Generator().manual_seed(0)
    features = torch.randn(200, 3, generator=generator, dtype=torch.float64)
    targets = torch.sign(torch.randn(200, generator=generator, dtype=torch.float64))
    risk = empirical_risk(features, targets, kind, l2=0.05)
    w = torch.randn(6, 3, generator=generator, dtype=torch.float64)
    batch = torch.randint(0, 200, (6, 17), generator=generator)
    for index in (None, batch):
        value, grad = risk.value_and_grad(w, index)
        with torch.enable_grad():
            wg = w.clone().requires_grad_(True)
            rows = features[index] if index is not None else features.expand(6, -1, -1)
            labels = targets[index] if index is not None else targets.expand(6, -1)
            expected = per_example_loss(kind, wg.unsqueeze(1), rows, labels).mean(1) + 0.025 * (wg * wg).sum(
                1
            )
            (auto,) = torch.autograd.grad(expected.sum(), wg)
        torch.testing.assert_close(value, expected.detach(), rtol=1e-13, atol=1e-15)
        torch.testing.assert_close(grad, auto, rtol=1e-12, atol=1e-15)


def test_the_registered_logistic_risk_has_data_and_a_stationary_fit():
    risk = get_landscape("logistic-risk")
    assert isinstance(risk, EmpiricalRisk) and risk.data_size == 569 and risk.dim == 2
    fit = torch.tensor([risk.point("fit").position], dtype=torch.float64)
    assert float(risk.gradient(fit).norm()) < 1e-10
    assert float(torch.linalg.eigvalsh(risk.hessian(fit)[0]).min()) > 0
    torch.testing.assert_close(
        risk.gradient(fit + 0.3), risk.autograd_gradient(fit + 0.3), rtol=1e-12, atol=0
    )


def test_a_particles_value_does_not_depend_on_the_other_particles():
    risk = logistic_risk()
    w = risk.random_starts(9, torch.Generator().manual_seed(1))
    batch = torch.randint(0, 569, (9, 32), generator=torch.Generator().manual_seed(2))
    value, grad = risk.value_and_grad(w, batch)
    for i in range(9):
        v, g = risk.value_and_grad(w[i : i + 1], batch[i : i + 1])
        assert torch.equal(v[0], value[i]) and torch.equal(g[0], grad[i])


def test_it_pickles_by_its_recipe():
    risk = logistic_risk(l2=0.01)
    again = pickle.loads(pickle.dumps(risk))
    w = torch.randn(4, 2, dtype=torch.float64)
    assert torch.equal(again.value(w), risk.value(w)) and again.l2 == 0.01


def test_bad_data_is_refused():
    with pytest.raises(ValueError, match="invalid loss='hinge'"):
        empirical_risk(torch.zeros(3, 2), torch.zeros(3), "hinge")
    with pytest.raises(ValueError, match="invalid features=\\(3, 2\\)"):
        empirical_risk(torch.zeros(3, 2), torch.zeros(4))
