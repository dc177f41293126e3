"""`TorchOptimizer`: any descent rule as a `torch.optim.Optimizer`, for training `nn.Module`s.

Each parameter tensor is one particle: flattened to ``[1, numel]``, stepped by the rule, reshaped back.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch

from descent.optim.optimizer import Optimizer


class TorchOptimizer(torch.optim.Optimizer):
    """Wrap ``Optimizer.build(name, **hyper)`` for ``model.parameters()``.

    >>> model = torch.nn.Linear(2, 1)
    >>> opt = TorchOptimizer(model.parameters(), "adam", lr=1e-3)
    >>> model(torch.ones(1, 2)).sum().backward(); opt.step()
    """

    def __init__(
        self,
        params: Iterable[torch.Tensor],
        name: str,
        *,
        generator: torch.Generator | None = None,
        **options: object,
    ) -> None:
        self.descent = Optimizer.build(name, **options)  # validates before anything else
        self.generator = generator
        self.step_index = 0
        super().__init__(params, {})

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                flat = p.detach().reshape(1, -1)
                state = self.state[p]
                if "rule" not in state:
                    state["rule"] = self.descent.init(flat)
                updates, state["rule"] = self.descent.step(
                    self.step_index, flat, p.grad.detach().reshape(1, -1), state["rule"], self.generator
                )
                p.add_(updates.reshape(p.shape))
        self.step_index += 1
        return loss
