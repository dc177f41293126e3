"""vanishing-exploding: the per-layer gradients against a direct autograd computation, the theory values
against descent.theory.signal recomputed here, and the clipping runs (measurements, not the verdict)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from descent.experiments import vanishing_exploding as gf
from descent.theory.signal import chi, critical_sigma_w2, fixed_point, variance_sequence

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def quick():
    result = gf.run(gf.Config.quick())
    yield result
    import matplotlib.pyplot as plt

    for figure in result.figures:
        plt.close(figure)


def autograd_layer_gradients(model: nn.Sequential, x: torch.Tensor, y: torch.Tensor):
    """Per hidden layer: mean over examples of |dL/dh^l|^2 by cutting the network at h^l (the rest of
    it as a function of h^l alone), and |dL/dW^l|^2 by torch.autograd.grad on the weights."""
    layers = list(model)
    cuts = [i for i, layer in enumerate(layers) if isinstance(layer, nn.Linear)][:-1]
    pre = []
    for i in cuts:
        with torch.no_grad():
            h = nn.Sequential(*layers[: i + 1])(x)
        h.requires_grad_(True)
        loss = nn.functional.cross_entropy(nn.Sequential(*layers[i + 1 :])(h), y, reduction="sum")
        (grad,) = torch.autograd.grad(loss, h)
        pre.append(float((grad**2).sum(dim=1).mean()))
    weights = [layers[i].weight for i in cuts]
    loss = nn.functional.cross_entropy(model(x), y, reduction="sum")
    grads = torch.autograd.grad(loss, weights)
    return np.array(pre), np.array([float((g**2).sum()) for g in grads])


@pytest.mark.parametrize("activation, init", [("tanh", "4-critical"), ("sigmoid", "xavier"), ("relu", "he")])
def test_layer_gradients_match_autograd_on_one_network(activation, init):
    value = gf.sigma_w2(activation, init)
    model = gf.deep_mlp(activation, gf.init_name(activation, init), 48, 6, 48, seed=3)
    x, y = gf.network_inputs(48, 16, gf.input_variance(activation, value), value, seed=4)
    pre, weights = gf.layer_gradients(model, x, y)
    ref_pre, ref_weights = autograd_layer_gradients(model, x, y)
    np.testing.assert_allclose(pre, ref_pre, rtol=1e-12)
    np.testing.assert_allclose(weights, ref_weights, rtol=1e-12)


def test_the_initialisations_have_the_stated_weight_variance():
    """Empirical weight variance x fan-in of a hidden layer against sigma_w^2 (4 SE of a variance)."""
    for activation, init, value in gf.settings(gf.Config()):
        model = gf.deep_mlp(activation, gf.init_name(activation, init), 256, 3, 256, seed=0)
        w = model[2].weight.detach()
        se = value * math.sqrt(2.0 / w.numel())
        assert abs(float(w.var()) * 256 - value) < 4 * se, (activation, init)
        assert float(model[2].bias.detach().abs().max()) == 0.0


def test_settings_skip_a_repeated_variance():
    found = {(a, i): v for a, i, v in gf.settings(gf.Config())}
    assert ("relu", "0.5-critical") not in found  # Xavier's 1 already
    assert found[("relu", "4-critical")] == 8.0 and found[("tanh", "0.5-critical")] == 0.5
    assert found[("sigmoid", "4-critical")] == pytest.approx(4 * critical_sigma_w2("sigmoid"))


def test_the_measured_mean_squares_are_the_networks_own(quick):
    """measure() on a small setting against the networks rebuilt here and differentiated by autograd."""
    config = gf.Config(depth=5, width=32, batch=8, networks=3)
    m = gf.measure("tanh", "he", 2.0, config, index=2)
    rows = []
    for k in range(config.networks):
        seed = config.seed + 1000 * 2 + k
        model = gf.deep_mlp("tanh", "he", 32, 5, 32, seed)
        x, y = gf.network_inputs(32, 8, m["q1"], 2.0, seed + 500_000)
        rows.append(autograd_layer_gradients(model, x, y)[0])
    rows = np.array(rows)
    np.testing.assert_allclose(m["mean_sq"], rows.mean(axis=0), rtol=1e-12)
    assert m["factor"] == pytest.approx((rows[:, 0].mean() / rows[:, -1].mean()) ** (1 / 4), rel=1e-12)


def test_each_factor_is_checked_against_mean_field_chi_recomputed(quick):
    config = gf.Config.quick()
    rows = {row.id: row for row in quick.rows}
    for activation, init, value in gf.settings(config):
        q = fixed_point(value, 0.0, activation)
        q1 = q if 0 < q < math.inf else 1.0
        qs = variance_sequence(q1, config.depth, value, 0.0, activation)
        theory = math.exp(np.mean([math.log(chi(v, value, activation)) for v in qs[:-1]]))
        row = rows[f"factor/{activation}/{init}"]
        assert row.theory == pytest.approx(theory, rel=1e-12)
        assert row.about == "theory" and row.se > 0
        assert row.tolerance == pytest.approx(3 * row.se + 2.0 / config.width * theory, rel=1e-12)
        assert row.passed == (abs(row.value - row.theory) <= row.tolerance)
        direction = "vanishes" if theory < 1 - 2.0 / config.width else "explodes"
        if abs(theory - 1) > 2.0 / config.width:
            claim = rows[f"{direction}/{activation}/{init}"]
            assert claim.about == "claim" and claim.value == row.value


def test_clipping_rows_are_a_replay_of_the_stored_specs(quick):
    """The shares of finite runs from the engine's diverged events of the stored specs, replayed; the
    clipped and unclipped runs start from the same networks."""
    from descent.spec import RunSpec, run_spec

    config = gf.Config.quick()
    objective = gf.clip_objective(config)
    assert len(quick.specs) == 2
    finite, starts = {}, {}
    for data in quick.specs:
        spec = RunSpec.from_dict(data)
        trajectory = run_spec(spec, landscape=objective)
        clip = bool(spec.transforms)
        finite[clip] = float(np.mean(trajectory.events["diverged"].numpy() < 0))
        starts[clip] = trajectory.loss[0]
        if clip:
            assert bool(torch.isfinite(trajectory.final_position).all())
    torch.testing.assert_close(starts[False], starts[True], rtol=0, atol=0)
    assert quick.row("finite/plain").value == finite[False]
    assert quick.row("finite/clipped").value == finite[True]
    assert quick.row("clipping").value == pytest.approx(finite[True] - finite[False], abs=1e-15)


def test_the_engines_clipped_momentum_is_torchs():
    """A few steps of the engine's clipped momentum on the deep network equal torch.optim.SGD(momentum)
    after scaling all the gradients by min(1, c/|g|) (torch's clip_grad_norm_ divides by |g| + 1e-6
    instead: 1e-8 apart here), the same iterates at constant lr."""
    from descent.dynamics import simulate
    from descent.optim import Optimizer
    from descent.train.models import flat_parameters, set_flat_parameters

    config = gf.Config(clip_depth=6, clip_width=16, clip_examples=50)
    objective = gf.clip_objective(config)
    start = objective.inits([7])
    engine = simulate(objective, Optimizer.build("momentum", lr=0.01, momentum=0.9, clip_norm=1.0), start, 6)
    model = objective.model
    set_flat_parameters(model, start[0].clone())
    sgd = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    for _ in range(6):
        sgd.zero_grad()
        nn.functional.cross_entropy(model(objective.inputs), objective.targets).backward()
        norm = torch.linalg.vector_norm(torch.cat([p.grad.flatten() for p in model.parameters()]))
        for p in model.parameters():
            p.grad.mul_(min(1.0, 1.0 / float(norm)))
        sgd.step()
    torch.testing.assert_close(
        engine.final_position[0], flat_parameters(model).detach(), rtol=1e-10, atol=1e-12
    )
