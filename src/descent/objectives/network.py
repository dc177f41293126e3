"""`NetworkObjective`: a small torch model and a data set as an engine objective, one whole network per
particle. Particle i is the network's parameters flattened into one vector ``w_i`` (``[N, P]``), and

    U(w; b) = (1/B) sum_{j in b} loss(f_w(x_j), y_j),      grad U by backpropagation,

on each particle's own mini-batch b (example indices ``[N, B]``, drawn by the engine's stream) or on
all n examples (``batch=None``: batch gradient descent). All N networks are evaluated in one call:
``torch.func.functional_call`` puts a particle's vector into the model, ``torch.func.grad_and_value``
differentiates it and ``torch.func.vmap`` maps that over the particles (and over their mini-batches).
So ``simulate`` trains N networks at once with per-particle learning rates, momenta, batch sizes and
streams, each as if it ran alone.

A network has no known critical points: a run's outcome is ``diverged`` (not finite, or a weight
beyond ``diverge_spans`` boxes), ``stationary`` (a small full gradient and step), ``target`` (the loss
reached ``target_loss``) or ``moving``. Starts: ``start()`` is the model's initialisation from
``init_seed``; ``inits(seeds)`` one network per seed; ``random_starts(n, generator)`` draws n seeds from
the generator (a spec's ``"random:N"``: N networks, each its own initialisation; ``"default:N"``: N
copies of one).

:func:`mlp_objective`: an MLP with cross-entropy on any ``descent.train`` dataset; :func:`digits_mlp` is
its digits case, with numbers for parameters (``DIGITS_MLP_DEFAULTS``), registered as the landscape
``digits-mlp`` (a stored spec naming it replays by name).

>>> net = digits_mlp(width=8, depth=1, examples=200)
>>> net.dim, net.data_size  # 64*8 + 8 + 8*10 + 10 weights; 160 training images
(610, 160)
>>> w = net.inits([0, 1])
>>> value, grad = net.value_and_grad(w, torch.tensor([[0, 1, 2], [3, 4, 5]]))
>>> value.shape, grad.shape
(torch.Size([2]), torch.Size([2, 610]))
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from descent._errors import invalid, listed
from descent.landscapes._base import Landscape
from descent.landscapes._registry import rebuild_landscape, register
from descent.objectives.mlp_batch import MLPLayout, mlp_layout
from descent.objectives.mlp_batch import value_and_grad as mlp_value_and_grad

DEFAULT_BOUND = 10.0  # the box of every weight: |w| <= 10 (divergence: 100 boxes beyond it)


@dataclass(frozen=True, eq=False)
class NetworkObjective(Landscape):
    """``model`` (its architecture; its own parameters are never used nor changed) on ``inputs [n, ...]``
    and ``targets [n]`` (class indices, or real targets) under the loss ``loss`` of
    :func:`descent.train.models.loss_function` (``"cross-entropy"`` or ``"mse"``) for ``task``.

    ``value_and_grad(w [N, P], batch)``: the loss and its gradient of each particle's network on its
    batch (``[N, B]`` example indices) or on all the data (None). ``test_inputs`` / ``test_targets``
    (optional): held-out data for :meth:`metrics`. ``init``: the initialisation of
    :func:`descent.train.models.init_parameters` behind :meth:`inits`.
    """

    model: nn.Module | None = None
    inputs: torch.Tensor = field(default_factory=lambda: torch.zeros(1, 1))
    targets: torch.Tensor = field(default_factory=lambda: torch.zeros(1))
    loss: str = "cross-entropy"
    task: str = "classification"
    test_inputs: torch.Tensor | None = None
    test_targets: torch.Tensor | None = None
    init: str = "default"
    init_seed: int = 0

    @property
    def data_size(self) -> int:
        return int(self.targets.shape[0])

    def _loss_fn(self):
        from descent.train.models import loss_function

        return loss_function(self.loss, self.task)

    @property
    def module(self) -> nn.Module:
        """The model (an objective built without one has none to evaluate)."""
        if self.model is None:
            raise invalid("model", None, "a torch.nn.Module")
        return self.model

    def _views(self, w: torch.Tensor) -> dict[str, torch.Tensor]:
        """``w [..., P]`` cut along its last axis into views shaped as the model's parameters, by name
        (``[..., *shape]``; the order of ``model.named_parameters()``, as ``flat_parameters``)."""
        views, start = {}, 0
        for name, p in self.module.named_parameters():
            views[name] = w[..., start : start + p.numel()].reshape(*w.shape[:-1], *p.shape)
            start += p.numel()
        return views

    def _network_loss(self, params: dict, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """One network's mean loss on ``(x, y)`` with the parameters ``params`` (by name)."""
        return self._loss_fn()(torch.func.functional_call(self.module, params, (x,)), y)

    def _one(self, w: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """One network's mean loss on ``(x, y)``: the model evaluated at the flat vector ``w``."""
        return self._network_loss(self._views(w), x, y)

    def _data(self, x: torch.Tensor, inputs: torch.Tensor, targets: torch.Tensor):
        inputs = inputs.to(dtype=x.dtype, device=x.device)
        targets = targets.to(device=x.device)
        return inputs, targets if self.task == "classification" else targets.to(x.dtype)

    @functools.cached_property
    def mlp_layout(self) -> MLPLayout | None:
        """The model's layout when it is a plain MLP (then :meth:`value_and_grad` takes the batched
        fast path of :mod:`descent.objectives.mlp_batch`), else None."""
        return mlp_layout(self.module, self.loss, self.task)

    def value_and_grad(self, x: torch.Tensor, batch: torch.Tensor | None = None):
        """(U [N], grad U [N, P]): each particle's network on its own batch (``[N, B]``) or all data.
        A plain MLP takes the batched fast path (:mod:`descent.objectives.mlp_batch`); every other
        model, :meth:`value_and_grad_general` (its reference)."""
        layout = self.mlp_layout
        if layout is None:
            return self.value_and_grad_general(x, batch)  # which checks x itself
        x = self._check_batch(x)
        inputs, targets = self._data(x, self.inputs, self.targets)
        if batch is not None:
            batch = batch.to(x.device)
            inputs, targets = inputs[batch], targets[batch]
        return mlp_value_and_grad(layout, x, inputs, targets)

    def value_and_grad_general(self, x: torch.Tensor, batch: torch.Tensor | None = None):
        """:meth:`value_and_grad` for any model: ``functional_call`` + ``grad_and_value`` + ``vmap``."""
        x = self._check_batch(x)
        inputs, targets = self._data(x, self.inputs, self.targets)
        # differentiated by parameter tensor, then concatenated: the gradient of a flat vector's slices
        # would fill and add a whole [N, P] tensor per slice
        both = torch.func.grad_and_value(self._network_loss)
        params = self._views(x)
        if batch is None:
            grads, value = torch.func.vmap(both, in_dims=(0, None, None))(params, inputs, targets)
        else:
            batch = batch.to(x.device)
            grads, value = torch.func.vmap(both)(params, inputs[batch], targets[batch])
        grad = torch.cat([g.reshape(x.shape[0], -1) for g in grads.values()], dim=1)
        return value.detach(), grad.detach()

    def gradient(self, x: torch.Tensor) -> torch.Tensor:
        """grad U on all the data ``[N, P]``: :meth:`value_and_grad`'s (so the two agree bit for bit)."""
        return self.value_and_grad(x)[1]

    def losses(self, x: torch.Tensor, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Each particle's mean loss ``[N]`` on ``(inputs, targets)``, differentiable in ``x``."""
        inputs, targets = self._data(x, inputs, targets)
        return torch.func.vmap(self._one, in_dims=(0, None, None))(x, inputs, targets)

    def outputs(self, x: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
        """Each particle's network applied to ``inputs``: ``[N, m, outputs]``."""

        def apply(w: torch.Tensor, data: torch.Tensor) -> torch.Tensor:
            return torch.func.functional_call(self.module, self._views(w), (data,))

        return torch.func.vmap(apply, in_dims=(0, None))(x, inputs.to(dtype=x.dtype, device=x.device))

    def metrics(self, x: torch.Tensor, test: bool = True) -> dict[str, torch.Tensor]:
        """Each particle's ``loss`` and (classification) ``accuracy`` ``[N]`` on the test data (or, with
        ``test=False``, the training data)."""
        inputs, targets = (self.test_inputs, self.test_targets) if test else (self.inputs, self.targets)
        if inputs is None or targets is None:
            raise invalid("test", test, "False (this objective holds no test data)")
        with torch.no_grad():
            outputs = self.outputs(x, inputs)
            inputs, targets = self._data(x, inputs, targets)
            loss = torch.func.vmap(self._loss_fn(), in_dims=(0, None))(outputs, targets)
        out = {"loss": loss}
        if self.task == "classification":
            out["accuracy"] = (outputs.argmax(dim=-1) == targets).to(x.dtype).mean(dim=-1)
        return out

    def inits(
        self, seeds: Sequence[int], dtype: torch.dtype = torch.float64, device: str | torch.device = "cpu"
    ) -> torch.Tensor:
        """One network per seed ``[len(seeds), P]``: the model initialised by ``init`` from that seed."""
        from descent.train.models import flat_parameters, init_parameters

        scratch = copy.deepcopy(self.module)
        rows = [flat_parameters(init_parameters(scratch, self.init, int(s))) for s in seeds]
        return torch.stack(rows).to(dtype=dtype, device=device)

    def start(self, dtype: torch.dtype = torch.float64, device: str | torch.device = "cpu") -> torch.Tensor:
        """The model initialised from ``init_seed`` ``[1, P]``."""
        return self.inits([self.init_seed], dtype, device)

    def random_starts(
        self,
        n: int,
        generator: torch.Generator | None = None,
        dtype: torch.dtype = torch.float64,
        device: str | torch.device = "cpu",
    ) -> torch.Tensor:
        """``n`` networks, each initialised from its own seed drawn from ``generator`` (without one:
        the seeds ``init_seed + 1 ... init_seed + n``)."""
        if generator is None:
            seeds = [self.init_seed + 1 + i for i in range(n)]
        else:
            seeds = torch.randint(0, 2**31 - 1, (n,), generator=generator).tolist()
        return self.inits(seeds, dtype, device)


def network_objective(
    model: nn.Module,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    loss: str = "cross-entropy",
    *,
    task: str | None = None,
    test_inputs: torch.Tensor | None = None,
    test_targets: torch.Tensor | None = None,
    init: str = "default",
    init_seed: int = 0,
    name: str = "network",
    lr: float = 0.1,
    bound: float = DEFAULT_BOUND,
    description: str = "",
) -> NetworkObjective:
    """``model`` on ``(inputs, targets)`` as an objective (``task``: "classification" when the targets
    are integers, else "regression"); every weight's box is ``[-bound, bound]``.

    >>> model = torch.nn.Linear(3, 2, dtype=torch.float64)
    >>> net = network_objective(model, torch.randn(10, 3, dtype=torch.float64), torch.arange(10) % 2)
    >>> net.dim, net.task, net.start().shape
    (8, 'classification', torch.Size([1, 8]))
    """
    from descent.train.models import loss_function, parse_init

    if not isinstance(model, nn.Module) or not list(model.parameters()):
        raise invalid("model", type(model).__name__, "a torch.nn.Module with parameters")
    if list(model.buffers()):
        raise invalid("model", type(model).__name__, "a model without buffers (batch norm has running stats)")
    inputs, targets = torch.as_tensor(inputs), torch.as_tensor(targets)
    if inputs.ndim < 2 or targets.shape != inputs.shape[:1]:
        raise invalid("inputs", tuple(inputs.shape), "[n, ...] inputs with n targets [n]")
    if task is None:
        task = "regression" if targets.is_floating_point() else "classification"
    loss_function(loss, task)  # a bad name or a loss the task has not: refused here
    parse_init(init)
    if not bound > 0:
        raise invalid("bound", bound, "a number > 0")
    dim = sum(p.numel() for p in model.parameters())
    energy = _Energy()
    objective = NetworkObjective(
        name=name,
        dim=dim,
        energy=energy,
        bounds=((-float(bound), float(bound)),) * dim,
        default_lr=lr,
        description=description or f"a {dim}-weight network on {targets.shape[0]} examples ({loss})",
        formula=f"mean({loss}(f_w(x_i), y_i))",
        model=model,
        inputs=inputs,
        targets=targets,
        loss=loss,
        task=task,
        test_inputs=test_inputs,
        test_targets=test_targets,
        init=init,
        init_seed=int(init_seed),
    )
    energy.owner = objective
    return objective


class _Energy:
    """U(w) on all the data, ``[N, P] -> [N]``, differentiable: the energy of its objective ``owner``."""

    owner: NetworkObjective | None = None

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        assert self.owner is not None
        return self.owner.losses(x, self.owner.inputs, self.owner.targets)


_ACTIVATION_CODES = ("relu", "tanh", "sigmoid", "gelu")  # digits-mlp's activation=0, 1, 2, 3


#: ``digits-mlp``'s parameters and defaults (the registry's numbers; see :func:`digits_mlp`): 1210
#: weights, so that listing the landscapes (which builds each with its defaults) stays quick
DIGITS_MLP_DEFAULTS = {"width": 16, "depth": 1, "examples": 0, "activation": 0, "init_seed": 0}
DIGITS_MLP_SUMMARY = "an MLP on scikit-learn's digits (cross-entropy), one whole network per particle"


@register("digits-mlp", "theory", DIGITS_MLP_SUMMARY, **DIGITS_MLP_DEFAULTS)
def digits_mlp(
    width: int = 16, depth: int = 1, examples: int = 0, activation: int = 0, init_seed: int = 0
) -> NetworkObjective:
    """``depth`` hidden layers of ``width`` units on the digits' 64 standardised pixels, 10 logits,
    cross-entropy, torch's default initialisation; the data are the training part (80 %, stratified,
    split seed 0) of the first ``examples`` images (0: all 1797). ``activation``: 0 relu, 1 tanh,
    2 sigmoid, 3 gelu (the registry takes numbers only)."""
    return _dataset_mlp("digits", 1797, width, depth, examples, activation, init_seed)


@register(
    "breast-cancer-mlp",
    "theory",
    "an MLP on scikit-learn's breast cancer data (cross-entropy), one whole network per particle",
    **DIGITS_MLP_DEFAULTS,
)
def breast_cancer_mlp(
    width: int = 16, depth: int = 1, examples: int = 0, activation: int = 0, init_seed: int = 0
) -> NetworkObjective:
    """:func:`digits_mlp`'s recipe on the breast cancer data: 30 standardised features, 2 classes, the
    training part of the first ``examples`` of its 569 cases (0: all)."""
    return _dataset_mlp("breast-cancer", 569, width, depth, examples, activation, init_seed)


def _dataset_mlp(
    dataset: str, size: int, width: int, depth: int, examples: int, activation: int, init_seed: int
) -> NetworkObjective:
    """The registered ``DATASET-mlp`` landscapes: their numbers checked, then :func:`mlp_objective`."""
    name = f"{dataset}-mlp"
    values = {"width": width, "depth": depth, "examples": examples, "activation": activation}
    values["init_seed"] = init_seed
    lows = {"width": 1, "depth": 1, "examples": 0, "activation": 0, "init_seed": 0}
    for key, value in values.items():
        if value != int(value) or value < lows[key]:
            raise invalid(f"{name}.{key}", value, f"an integer >= {lows[key]}")
    if not int(activation) < len(_ACTIVATION_CODES):
        codes = listed(f"{i} ({a})" for i, a in enumerate(_ACTIVATION_CODES))
        raise invalid(f"{name}.activation", activation, f"one of: {codes}")
    if examples and not 10 <= examples <= size:
        raise invalid(f"{name}.examples", examples, f"0 (all {size}) or an integer in [10, {size}]")
    act = _ACTIVATION_CODES[int(activation)]
    net = mlp_objective(dataset, int(width), int(depth), int(examples), act, int(init_seed))
    return net.with_recipe(rebuild_landscape, name, {k: float(v) for k, v in values.items()})


def mlp_objective(
    dataset: str,
    width: int,
    depth: int,
    examples: int = 0,
    activation: str = "relu",
    init_seed: int = 0,
    lr: float = 0.1,
) -> NetworkObjective:
    """An MLP (``depth`` hidden layers of ``width`` units, ``activation``) with cross-entropy on the
    training part of ``descent.train.load_dataset(dataset)`` (its first ``examples``, 0: all; 80 %,
    stratified, split seed 0), its test part held out for :meth:`NetworkObjective.metrics`."""
    from descent.train import build_model, load_dataset

    data = load_dataset(dataset, n=examples or None, seed=0)
    spec = "mlp:" + ",".join([str(width)] * depth)
    model = build_model(spec, data.n_features, data.n_outputs, activation=activation, seed=init_seed)
    return network_objective(
        model,
        data.x_train,
        data.y_train,
        "cross-entropy",
        test_inputs=data.x_test,
        test_targets=data.y_test,
        init_seed=init_seed,
        name=f"{dataset}-mlp",
        lr=lr,
        description=f"{spec} ({activation}) on {len(data.x_train)} {dataset} examples, cross-entropy",
    )
