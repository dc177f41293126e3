"""Mini-batches drawn by the engine: each particle has its own batch size and sampling mode, so one
run holds every batch size. Indices come from the counter-based stream (``descent.random``), so a
particle's batches depend only on (seed, particle, step).

Modes, for a data set of n examples and batch size B (B >= n, or no batch size: the full data):

- ``replacement``: B indices drawn uniformly with replacement at every step.
- ``without``:     B distinct indices at every step (the first B of a fresh random permutation).
- ``epoch``:       a random permutation per epoch, cut into floor(n / B) consecutive batches
                   (the incomplete last batch is dropped); step k uses batch k mod floor(n / B) of
                   epoch k // floor(n / B).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import torch

from descent._errors import invalid, listed
from descent.random import integers, permutation

MODES = ("replacement", "without", "epoch")


@dataclass(frozen=True)
class Batching:
    """Batch sizes ``[N]`` (0: the full data) and modes (one per particle) for ``data_size`` examples."""

    sizes: tuple[int, ...]
    modes: tuple[str, ...]
    data_size: int

    @classmethod
    def build(cls, size: object, mode: object, n_particles: int, data_size: int | None) -> Batching | None:
        """From the spec's ``batch_size`` (an int, None, or a list per particle) and ``batch_mode``."""
        if size is None:
            return None
        if data_size is None:
            allowed = "no batch size: this objective has no data to draw mini-batches from"
            raise invalid("batch_size", size, allowed)
        sizes = list(size) if isinstance(size, (list, tuple)) else [size] * n_particles
        modes = list(mode) if isinstance(mode, (list, tuple)) else [mode] * n_particles
        if len(sizes) != n_particles or len(modes) != n_particles:
            raise invalid("batch_size", size, f"one size (and mode) or {n_particles}, one per particle")
        for b in sizes:
            if isinstance(b, bool) or not isinstance(b, (int, float)) or b != int(b) or b < 1:
                allowed = f"an integer in [1, {data_size}] (or no batch size: the full data)"
                raise invalid("batch_size", b, allowed)
        for m in modes:
            if m not in MODES:
                raise invalid("batch_mode", m, f"one of: {listed(MODES)}")
        sizes = [0 if int(b) >= data_size else int(b) for b in sizes]
        return cls(tuple(sizes), tuple(modes), int(data_size))

    def groups(self, device: torch.device) -> list[tuple[int, str, torch.Tensor]]:
        """(batch size, mode, particle indices) for each distinct (size, mode) pair."""
        keys = sorted(set(zip(self.sizes, self.modes)))
        out = []
        for size, mode in keys:
            rows = [i for i, key in enumerate(zip(self.sizes, self.modes)) if key == (size, mode)]
            out.append((size, mode, torch.tensor(rows, dtype=torch.int64, device=device)))
        return out


def draw_indices(seed: int, mode: str, size: int, data_size: int, particle: torch.Tensor, step: int):
    """The example indices ``[M, size]`` of step ``step`` for the particles with ids ``particle``."""
    if mode == "replacement":
        return integers(seed, "batch", particle, step, size, data_size)
    if mode == "without":
        return permutation(seed, "batch", particle, step, data_size)[:, :size]
    per_epoch = data_size // size
    epoch, position = divmod(step, per_epoch)
    order = epoch_order(seed, particle, epoch, data_size)
    return order[:, position * size : (position + 1) * size]


_ORDERS: dict[tuple, torch.Tensor] = {}  # the last epochs' permutations, by (seed, epoch, n, particles)
_KEPT_INDICES = 1 << 24  # at most this many indices kept (128 MB); a larger permutation is not kept
_ORDERS_LOCK = threading.Lock()  # runs in several threads (the Arena's) share the kept permutations


def epoch_order(seed: int, particle: torch.Tensor, epoch: int, data_size: int) -> torch.Tensor:
    """``permutation(seed, "shuffle", particle, epoch, data_size)``, made once per epoch: the floor(n/B)
    steps of an epoch cut their batches from the same permutation (the last few are kept, for runs
    whose particles draw in several groups). Do not modify the result."""
    key = (seed, epoch, data_size, str(particle.device), particle.cpu().numpy().tobytes())
    with _ORDERS_LOCK:
        order = _ORDERS.get(key)
    if order is None:
        order = permutation(seed, "shuffle", particle, epoch, data_size)
        if order.numel() <= _KEPT_INDICES:
            with _ORDERS_LOCK:
                while _ORDERS and sum(o.numel() for o in _ORDERS.values()) + order.numel() > _KEPT_INDICES:
                    del _ORDERS[next(iter(_ORDERS))]  # the oldest
                _ORDERS[key] = order
    return order


def batched_value_and_grad(objective, x, batching: Batching | None, groups, seed: int, step: int, ids):
    """U and grad U of every particle at ``x`` on its own mini-batch of ``step`` (``groups``: from
    ``batching.groups``; ``ids``: the particles' ids ``[N]``)."""
    if batching is None:
        return objective.value_and_grad(x)
    if len(groups) == 1:
        size, mode, _ = groups[0]
        batch = None if size == 0 else draw_indices(seed, mode, size, batching.data_size, ids, step)
        return objective.value_and_grad(x, batch)
    value = torch.empty(x.shape[0], dtype=x.dtype, device=x.device)
    grad = torch.empty_like(x)
    for size, mode, rows in groups:
        batch = None if size == 0 else draw_indices(seed, mode, size, batching.data_size, ids[rows], step)
        v, g = objective.value_and_grad(x[rows], batch)
        value[rows], grad[rows] = v, g
    return value, grad
