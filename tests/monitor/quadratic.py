"""A quadratic with injected gradient noise of known covariance, as a torch model: example ``x`` (a
noise vector) has energy ``U_x(w) = c + w^T A w / 2 + x . w``, so its gradient is ``A w + x`` and the
per-example gradient covariance is exactly the covariance ``C`` of the ``x`` drawn. ``A`` is a buffer
the loop may change (curvature growing along a run)."""

from __future__ import annotations

import torch
from torch import nn

DTYPE = torch.float64


class Quadratic(nn.Module):
    def __init__(self, hessian: torch.Tensor, start: torch.Tensor, offset: float = 0.0):
        super().__init__()
        self.w = nn.Parameter(start.clone().to(DTYPE))
        self.register_buffer("hessian", hessian.clone().to(DTYPE))
        self.offset = offset

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, d] -> [B] energies
        return self.offset + 0.5 * self.w @ self.hessian @ self.w + x @ self.w


def mean_energy(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return outputs.mean()


def spectrum_matrix(eigenvalues: list[float] | torch.Tensor, seed: int) -> torch.Tensor:
    """A symmetric matrix with these eigenvalues and a random orthogonal eigenbasis."""
    values = torch.as_tensor(eigenvalues, dtype=DTYPE)
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(len(values), len(values), generator=g, dtype=DTYPE))
    return q @ torch.diag(values) @ q.T


class NoiseSource:
    """Draws noise vectors ``x ~ N(0, C)`` with ``C = L L^T`` from its own generator."""

    def __init__(self, cholesky: torch.Tensor, seed: int):
        self.cholesky = cholesky.to(DTYPE)
        self.generator = torch.Generator().manual_seed(seed)

    @property
    def covariance(self) -> torch.Tensor:
        return self.cholesky @ self.cholesky.T

    def draw(self, n: int) -> torch.Tensor:
        d = self.cholesky.shape[0]
        return torch.randn(n, d, generator=self.generator, dtype=DTYPE) @ self.cholesky.T


def sgd_step(model: Quadratic, optimizer: torch.optim.Optimizer, x: torch.Tensor) -> torch.Tensor:
    optimizer.zero_grad()
    loss = mean_energy(model(x), None)  # type: ignore[arg-type]
    loss.backward()
    optimizer.step()
    return loss.detach()
