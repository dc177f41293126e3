"""The batched MLP fast path (descent.objectives.mlp_batch) equals the general path it replaces
(``functional_call`` + ``grad`` + ``vmap``) and, for the models it does not know, steps aside."""

import pytest
import torch
from torch import nn

from descent.objectives import network_objective
from descent.objectives.mlp_batch import mlp_layout
from descent.train import build_model

torch.set_num_threads(1)


def objective(activation: str, loss: str, outputs: int = 10, classes: bool = True, dtype=torch.float64):
    g = torch.Generator().manual_seed(0)
    inputs = torch.randn(60, 7, generator=g, dtype=dtype)
    if classes:
        targets = torch.randint(0, outputs, (60,), generator=g)
    else:
        targets = torch.randn(60, *((outputs,) if outputs > 1 else ()), generator=g, dtype=dtype)
    model = build_model("mlp:9,5", 7, outputs, activation=activation, seed=1, dtype=dtype)
    return network_objective(model, inputs, targets, loss)


CASES = [
    ("relu", "cross-entropy", 10, True),
    ("tanh", "cross-entropy", 4, True),
    ("sigmoid", "cross-entropy", 3, True),
    ("tanh", "mse", 4, True),  # squared error against one-hot classes
    ("relu", "mse", 1, False),  # regression, one output
    ("sigmoid", "mse", 1, False),
]


@pytest.mark.parametrize("activation,loss,outputs,classes", CASES)
def test_the_fast_path_equals_the_general_path(activation, loss, outputs, classes):
    net = objective(activation, loss, outputs, classes)
    assert net.mlp_layout is not None
    w = net.inits([0, 1, 2]) * 1.5  # larger weights: saturated units and dead ReLUs included
    batch = torch.randint(0, net.data_size, (3, 11), generator=torch.Generator().manual_seed(2))
    for rows in (batch, None):
        value, grad = net.value_and_grad(w, rows)
        ref_value, ref_grad = net.value_and_grad_general(w, rows)
        torch.testing.assert_close(value, ref_value, rtol=1e-13, atol=1e-15)
        torch.testing.assert_close(grad, ref_grad, rtol=1e-12, atol=1e-14)


def test_the_fast_path_in_float32():
    net = objective("relu", "cross-entropy", dtype=torch.float32)
    w = net.inits([0, 1], dtype=torch.float32)
    batch = torch.randint(0, net.data_size, (2, 16), generator=torch.Generator().manual_seed(3))
    value, grad = net.value_and_grad(w, batch)
    ref_value, ref_grad = net.value_and_grad_general(w, batch)
    assert value.dtype == grad.dtype == torch.float32
    torch.testing.assert_close(value, ref_value, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(grad, ref_grad, rtol=1e-4, atol=1e-6)


def test_a_linear_model_is_a_one_layer_mlp():
    model = build_model("logistic", 7, 3, seed=0, dtype=torch.float64)
    net = network_objective(model, torch.randn(30, 7, dtype=torch.float64), torch.arange(30) % 3)
    assert net.mlp_layout is not None and net.mlp_layout.shapes == ((3, 7),)
    w = net.inits([0, 1])
    torch.testing.assert_close(net.value_and_grad(w)[1], net.value_and_grad_general(w)[1], rtol=1e-12, atol=0)


@pytest.mark.parametrize(
    "model",
    [
        nn.Sequential(nn.Linear(7, 5), nn.GELU(), nn.Linear(5, 3)),  # an activation it does not know
        nn.Sequential(nn.Linear(7, 5), nn.ReLU(), nn.Linear(5, 5), nn.Tanh(), nn.Linear(5, 3)),  # mixed
        nn.Sequential(nn.Linear(7, 5, bias=False), nn.ReLU(), nn.Linear(5, 3)),  # no bias
        nn.Sequential(nn.Linear(7, 5), nn.ReLU()),  # ends in an activation
        nn.Sequential(nn.Linear(7, 5), nn.Dropout(0.0), nn.Linear(5, 3)),
    ],
    ids=["gelu", "mixed", "no-bias", "ends-in-act", "dropout"],
)
def test_other_models_take_the_general_path(model):
    assert mlp_layout(model, "cross-entropy", "classification") is None
    model = model.to(torch.float64)
    net = network_objective(model, torch.randn(30, 7, dtype=torch.float64), torch.arange(30) % 3)
    w = net.inits([0, 1])
    value, grad = net.value_and_grad(w)
    for i in range(2):  # against autograd on the model itself
        torch.nn.utils.vector_to_parameters(w[i].clone(), model.parameters())
        model.zero_grad()
        loss = nn.functional.cross_entropy(model(net.inputs), net.targets)
        loss.backward()
        expected = torch.cat([p.grad.reshape(-1) for p in model.parameters()])
        torch.testing.assert_close(value[i], loss.detach(), rtol=1e-13, atol=0)
        torch.testing.assert_close(grad[i], expected, rtol=1e-12, atol=1e-15)
