"""The training lab's models: shapes, initialisations against their theoretical variances, seeds,
losses against hand-written formulas, and the flat-vector view against the module itself."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from descent._errors import DescentError
from descent.train.models import (
    build_model,
    flat_parameters,
    functional_loss,
    loss_function,
    parameter_dict,
    set_flat_parameters,
)

Z = 3.0
F64 = torch.float64


@pytest.mark.parametrize(
    "spec, n_params",
    [
        ("mlp:64,32", 64 * 64 + 64 + 64 * 32 + 32 + 32 * 10 + 10),
        ("linear", 64 * 10 + 10),
        ("logistic", 64 * 10 + 10),
        ("cnn", (8 * 9 + 8) + (16 * 8 * 9 + 16) + (64 * 10 + 10)),
    ],
)
def test_shapes(spec, n_params):
    model = build_model(spec, 64, 10)
    assert model(torch.randn(7, 64, dtype=F64)).shape == (7, 10)
    assert flat_parameters(model).shape == (n_params,)
    assert all(p.dtype == F64 for p in model.parameters())


def test_activation_and_dtype():
    model = build_model("mlp:5,5", 3, 2, activation="gelu", dtype=torch.float32)
    assert [type(m) for m in model] == [nn.Linear, nn.GELU, nn.Linear, nn.GELU, nn.Linear]
    assert all(p.dtype == torch.float32 for p in model.parameters())


def test_default_init_is_torchs_own():
    torch.manual_seed(11)
    reference = nn.Sequential(
        nn.Linear(6, 5, dtype=F64),
        nn.Tanh(),
        nn.Linear(5, 4, dtype=F64),
        nn.Tanh(),
        nn.Linear(4, 3, dtype=F64),
    )
    model = build_model("mlp:5,4", 6, 3, activation="tanh", seed=11)
    expected = torch.cat([p.detach().reshape(-1) for p in reference.parameters()])
    assert torch.equal(flat_parameters(model), expected)


def second_moment_within(values: torch.Tensor, variance: float) -> None:
    """E[w^2] (w has mean 0) equals ``variance`` within Z standard errors of the sample."""
    squares = values.reshape(-1).to(F64).square()
    se = squares.std() / math.sqrt(squares.numel())
    assert abs(float(squares.mean()) - variance) < Z * float(se), (float(squares.mean()), variance)


@pytest.mark.parametrize("init", ["default", "xavier", "he", "normal:1.7"])
def test_init_variances_follow_theory(init):
    model = build_model("mlp:300,200", 100, 50, init=init, seed=0)
    for layer in (m for m in model if isinstance(m, nn.Linear)):
        fan_out, fan_in = layer.weight.shape
        variance = {
            "default": 1 / (3 * fan_in),
            "xavier": 2 / (fan_in + fan_out),
            "he": 2 / fan_in,
            "normal:1.7": 1.7**2 / fan_in,
        }[init]
        second_moment_within(layer.weight.detach(), variance)
        if init == "default":
            second_moment_within(layer.bias.detach(), 1 / (3 * fan_in))
        else:
            assert torch.all(layer.bias == 0)


def test_conv_fan_in_counts_the_kernel():
    model = build_model("cnn", 64, 10, init="he", seed=2)
    conv = model[4]
    assert isinstance(conv, nn.Conv2d) and conv.weight.shape == (16, 8, 3, 3)
    second_moment_within(conv.weight.detach(), 2 / (8 * 9))


def test_seeds_reproducible_and_global_rng_untouched():
    state = torch.get_rng_state()
    a = build_model("mlp:8", 3, 2, seed=1, init="xavier")
    b = build_model("mlp:8", 3, 2, seed=1, init="xavier")
    c = build_model("mlp:8", 3, 2, seed=2, init="xavier")
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(flat_parameters(a), flat_parameters(b))
    assert not torch.equal(flat_parameters(a), flat_parameters(c))


def test_losses_match_their_formulas():
    outputs = torch.randn(6, 4, dtype=F64)
    y = torch.tensor([0, 3, 1, 2, 3, 0])
    log_p = outputs - outputs.exp().sum(1, keepdim=True).log()
    ce = -log_p[torch.arange(6), y].mean()
    torch.testing.assert_close(loss_function("cross-entropy", "classification")(outputs, y), ce)
    one_hot = torch.eye(4, dtype=F64)[y]
    mse = 0.5 * ((outputs - one_hot) ** 2).sum() / 6
    torch.testing.assert_close(loss_function("mse", "classification")(outputs, y), mse)
    target = torch.randn(6, dtype=F64)
    regression = loss_function("mse", "regression")(outputs[:, :1], target)
    torch.testing.assert_close(regression, 0.5 * ((outputs[:, 0] - target) ** 2).mean())


def test_flat_vector_views():
    model = build_model("cnn", 64, 10, activation="tanh", seed=3)
    x, y = torch.randn(9, 64, dtype=F64), torch.randint(0, 10, (9,))
    loss = loss_function("cross-entropy", "classification")
    w = flat_parameters(model)
    before = [p.detach().clone() for p in model.parameters()]

    shifted = w + 0.01 * torch.randn(w.shape, dtype=F64)
    shifted.requires_grad_(True)
    value = functional_loss(model, loss, x, y)(shifted)
    (grad,) = torch.autograd.grad(value, shifted)
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), before))  # not mutated

    set_flat_parameters(model, shifted.detach())
    assert torch.equal(flat_parameters(model), shifted.detach())
    reference = loss(model(x), y)
    reference.backward()
    torch.testing.assert_close(value, reference, rtol=0, atol=0)
    torch.testing.assert_close(grad, torch.cat([p.grad.reshape(-1) for p in model.parameters()]))
    names = [name for name, _ in model.named_parameters()]
    assert list(parameter_dict(model, w)) == names


@pytest.mark.parametrize(
    "call, parameter",
    [
        (lambda: build_model("mlp", 3, 2), "model"),
        (lambda: build_model("mlp:0", 3, 2), "model"),
        (lambda: build_model("mlp:4,x", 3, 2), "model"),
        (lambda: build_model("resnet", 3, 2), "model"),
        (lambda: build_model("cnn", 4, 2), "model"),
        (lambda: build_model("linear", 0, 2), "n_inputs"),
        (lambda: build_model("linear", 3, 2, activation="swish"), "activation"),
        (lambda: build_model("linear", 3, 2, init="normal:-1"), "init"),
        (lambda: build_model("linear", 3, 2, init="lecun"), "init"),
        (lambda: build_model("linear", 3, 2, seed=-2), "seed"),
        (lambda: loss_function("hinge", "classification"), "loss"),
        (lambda: loss_function("cross-entropy", "regression"), "loss"),
        (lambda: set_flat_parameters(build_model("linear", 3, 2), torch.zeros(3)), "vector shape"),
    ],
)
def test_bad_input_is_refused(call, parameter):
    with pytest.raises(DescentError) as error:
        call()
    assert error.value.parameter == parameter
