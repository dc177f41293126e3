"""Models and losses for the training lab, and a model seen as one flat parameter vector.

``build_model(spec, n_inputs, n_outputs)``:

=============  =====================================================================================
spec           model
=============  =====================================================================================
mlp:64,64      Linear(n_inputs, 64), act, Linear(64, 64), act, Linear(64, n_outputs)
linear         Linear(n_inputs, n_outputs) (linear regression; with cross-entropy, logistic)
logistic       Linear(n_inputs, n_outputs): n_outputs logits for cross-entropy (softmax regression)
cnn            8x8 images (n_inputs = 64) seen as 1x8x8: Conv(1->8, 3x3, pad 1), act, MaxPool 2,
               Conv(8->16, 3x3, pad 1), act, MaxPool 2, Linear(64, n_outputs)
=============  =====================================================================================

Activations: ``ACTIVATIONS``. Initialisations (``fan_in`` = inputs of a unit; a conv's in_channels*k*k):

- ``default``: torch's own, U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weights and biases
  (variance 1/(3 fan_in));
- ``xavier``: weights N(0, 2/(fan_in + fan_out)), biases 0;
- ``he``: weights N(0, 2/fan_in), biases 0;
- ``normal:SIGMA``: weights N(0, SIGMA^2/fan_in), biases 0 (the mean-field convention sigma_w^2/fan_in).

Every model is built on the meta device and initialised from its own ``torch.Generator(seed)``: the
global RNG is not touched, and the same seed gives the same model.

Losses (``LOSSES``), both averaged over the examples:

- ``cross-entropy``: -log softmax(f(x))_y (classification only);
- ``mse``: 1/2 sum_k (f(x)_k - y_k)^2 over the outputs, y one-hot for classification (the
  edge-of-stability convention, Cohen et al. 2021: its Gauss-Newton part is J^T J / n).

>>> model = build_model("mlp:16", 4, 3, activation="tanh", init="xavier", seed=1)
>>> model
Sequential(
  (0): Linear(in_features=4, out_features=16, bias=True)
  (1): Tanh()
  (2): Linear(in_features=16, out_features=3, bias=True)
)
>>> w = flat_parameters(model)
>>> w.shape, w.dtype
(torch.Size([131]), torch.float64)
>>> x, y = torch.randn(5, 4, dtype=torch.float64), torch.tensor([0, 1, 2, 0, 1])
>>> loss = loss_function("cross-entropy", "classification")
>>> f = functional_loss(model, loss, x, y)
>>> bool(torch.isclose(f(w), loss(model(x), y)))
True
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from descent._errors import check_number, invalid, listed

MODELS = ("mlp:WIDTHS", "linear", "logistic", "cnn")
ACTIVATIONS = ("relu", "tanh", "sigmoid", "gelu")
INITS = ("default", "xavier", "he", "normal:SIGMA")
LOSSES = ("cross-entropy", "mse")
CNN_CHANNELS = (8, 16)

_ACTIVATION = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "gelu": nn.GELU}

Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def parse_model(spec: object) -> tuple[str, tuple[int, ...]]:
    """``"mlp:64,32"`` -> ``("mlp", (64, 32))``; ``"linear"`` -> ``("linear", ())``."""
    allowed = f"one of: {listed(MODELS)} (WIDTHS: positive integers separated by commas, e.g. mlp:64,64)"
    if not isinstance(spec, str):
        raise invalid("model", spec, allowed)
    kind, colon, rest = spec.strip().partition(":")
    if kind in ("linear", "logistic", "cnn") and not colon:
        return kind, ()
    if kind != "mlp" or not colon:
        raise invalid("model", spec, allowed)
    try:
        widths = tuple(int(w) for w in rest.split(","))
    except ValueError:
        raise invalid("model", spec, allowed) from None
    if not widths or min(widths) < 1:
        raise invalid("model", spec, allowed)
    return kind, widths


def parse_init(init: object) -> tuple[str, float | None]:
    """``"normal:1.5"`` -> ``("normal", 1.5)``; ``"he"`` -> ``("he", None)``."""
    allowed = f"one of: {listed(INITS)} (SIGMA a number > 0)"
    if not isinstance(init, str):
        raise invalid("init", init, allowed)
    kind, colon, rest = init.partition(":")
    if kind in ("default", "xavier", "he") and not colon:
        return kind, None
    if kind != "normal" or not colon:
        raise invalid("init", init, allowed)
    try:
        sigma = check_number("init", rest, 0, low_open=True)
    except ValueError:
        raise invalid("init", init, allowed) from None
    return kind, sigma


def _check_size(parameter: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise invalid(parameter, value, "an integer >= 1")
    return value


def _layers(kind: str, widths: tuple[int, ...], n_inputs: int, n_outputs: int, act, kw) -> nn.Module:
    if kind in ("linear", "logistic"):
        return nn.Linear(n_inputs, n_outputs, **kw)
    if kind == "mlp":
        layers: list[nn.Module] = []
        for fan_in, fan_out in zip((n_inputs, *widths), widths):
            layers += [nn.Linear(fan_in, fan_out, **kw), act()]
        return nn.Sequential(*layers, nn.Linear(widths[-1], n_outputs, **kw))
    c1, c2 = CNN_CHANNELS
    return nn.Sequential(
        nn.Unflatten(1, (1, 8, 8)),
        nn.Conv2d(1, c1, 3, padding=1, **kw),
        act(),
        nn.MaxPool2d(2),
        nn.Conv2d(c1, c2, 3, padding=1, **kw),
        act(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(c2 * 2 * 2, n_outputs, **kw),
    )


def _fans(weight: torch.Tensor) -> tuple[int, int]:
    receptive = math.prod(weight.shape[2:])
    return weight.shape[1] * receptive, weight.shape[0] * receptive


@torch.no_grad()
def init_parameters(model: nn.Module, init: str = "default", seed: int = 0) -> nn.Module:
    """(Re)initialise every Linear and Conv layer of ``model`` in place (see the module's table),
    drawing from ``torch.Generator().manual_seed(seed)`` layer by layer, weight then bias."""
    kind, sigma = parse_init(init)
    generator = torch.Generator(device=next(model.parameters()).device).manual_seed(seed)
    for layer in model.modules():
        if not isinstance(layer, (nn.Linear, nn.Conv2d)):
            continue
        weight, bias = layer.weight, layer.bias
        fan_in, fan_out = _fans(weight)
        if kind == "default":
            nn.init.kaiming_uniform_(weight, a=math.sqrt(5), generator=generator)  # as torch's layers
            if bias is not None:
                bound = 1 / math.sqrt(fan_in)
                nn.init.uniform_(bias, -bound, bound, generator=generator)
            continue
        std = {
            "xavier": math.sqrt(2 / (fan_in + fan_out)),
            "he": math.sqrt(2 / fan_in),
            "normal": (sigma or 0.0) / math.sqrt(fan_in),
        }[kind]
        weight.normal_(0.0, std, generator=generator)
        if bias is not None:
            bias.zero_()
    return model


def build_model(
    spec: str,
    n_inputs: int,
    n_outputs: int,
    *,
    activation: str = "relu",
    init: str = "default",
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
) -> nn.Module:
    """The model ``spec`` (see the module's table) with ``n_inputs`` features and ``n_outputs``
    outputs, initialised by ``init`` from its own generator seeded with ``seed``."""
    kind, widths = parse_model(spec)
    n_inputs, n_outputs = _check_size("n_inputs", n_inputs), _check_size("n_outputs", n_outputs)
    if activation not in ACTIVATIONS:
        raise invalid("activation", activation, f"one of: {listed(ACTIVATIONS)}")
    parse_init(init)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise invalid("seed", seed, "an integer >= 0")
    if kind == "cnn" and n_inputs != 64:
        raise invalid("model", spec, "a model for this data (cnn takes 8x8 images: 64 features)")
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise invalid("dtype", dtype, "a floating torch dtype (torch.float64, torch.float32)")
    meta = dict(device="meta", dtype=dtype)
    model = _layers(kind, widths, n_inputs, n_outputs, _ACTIVATION[activation], meta)
    model = model.to_empty(device=torch.device("cpu") if device is None else device)
    return init_parameters(model, init, seed)


def loss_function(name: str, task: str) -> Loss:
    """The loss ``name`` (``LOSSES``) for ``task`` as ``loss(outputs [n, k], y [n]) -> mean``."""
    if name not in LOSSES:
        raise invalid("loss", name, f"one of: {listed(LOSSES)}")
    if task not in ("classification", "regression"):
        raise invalid("task", task, "one of: classification, regression")
    if name == "cross-entropy":
        if task != "classification":
            raise invalid("loss", name, "mse for a regression task")
        return nn.functional.cross_entropy
    return _mse_one_hot if task == "classification" else _mse


def _mse(outputs: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """1/(2n) sum_i ||f(x_i) - y_i||^2."""
    return 0.5 * (outputs - y.reshape(outputs.shape)).square().sum() / outputs.shape[0]


def _mse_one_hot(outputs: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """1/(2n) sum_i ||f(x_i) - onehot(y_i)||^2."""
    classes = torch.arange(outputs.shape[-1], device=y.device)
    target = (y.unsqueeze(-1) == classes).to(outputs.dtype)  # one-hot; torch's one_hot cannot be vmapped
    return _mse(outputs, target)


def accuracy(outputs: torch.Tensor, y: torch.Tensor) -> float:
    """The fraction of examples whose largest output is their class."""
    return float((outputs.argmax(dim=-1) == y).to(torch.float64).mean())


def flat_parameters(model: nn.Module) -> torch.Tensor:
    """All parameters in ``model.named_parameters()`` order, concatenated into one detached vector."""
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


@torch.no_grad()
def set_flat_parameters(model: nn.Module, vector: torch.Tensor) -> None:
    """Copy ``vector`` (as ``flat_parameters`` orders it) into ``model``'s parameters in place."""
    total = sum(p.numel() for p in model.parameters())
    if vector.shape != (total,):
        raise invalid("vector shape", tuple(vector.shape), f"({total},): the model's parameter count")
    for p, part in zip(model.parameters(), parameter_dict(model, vector).values()):
        p.copy_(part)


def parameter_dict(model: nn.Module, vector: torch.Tensor) -> dict[str, torch.Tensor]:
    """``vector`` cut into views shaped as ``model``'s parameters, by name: the argument
    ``torch.func.functional_call`` takes (differentiable in ``vector``; works under ``vmap``)."""
    named, start = {}, 0
    for name, p in model.named_parameters():
        named[name] = vector[start : start + p.numel()].view(p.shape)
        start += p.numel()
    return named


def functional_loss(
    model: nn.Module, loss: Loss, x: torch.Tensor, y: torch.Tensor
) -> Callable[[torch.Tensor], torch.Tensor]:
    """``w -> loss(f_w(x), y)``: the model evaluated at a flat vector ``w`` through
    ``torch.func.functional_call`` (the model itself is not changed), differentiable in ``w``."""

    def value(vector: torch.Tensor) -> torch.Tensor:
        outputs = torch.func.functional_call(model, parameter_dict(model, vector), (x,))
        return loss(outputs, y)

    return value
