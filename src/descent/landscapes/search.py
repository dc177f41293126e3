"""Numeric critical points of a landscape given only its energy: minima and saddles inside a box.

Used for user formulas, whose critical points nobody typed in: damped Newton from a grid of starts,
then a check of what each converged point is (see :func:`find_critical_points`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from descent.landscapes._base import CriticalPoint

_Fn = Callable[[torch.Tensor], torch.Tensor]


def _value_grad_hess(energy: _Fn, x: torch.Tensor, h: torch.Tensor):
    """U [N], grad U [N, d] (autograd) and the Hessian [N, d, d] by central differences of the
    gradient (steps ``h`` per axis), all from one first-order pass over the N (1 + 2d) points.

    Differences rather than double backward: the second backward of sqrt/log/pow makes torch
    import its compiler stack on first use (seconds). Non-finite Hessian entries are clamped.
    """
    n, d = x.shape
    eye = torch.diag(h)
    shifted = torch.cat([x, (x[None] + eye[:, None]).reshape(-1, d), (x[None] - eye[:, None]).reshape(-1, d)])
    with torch.enable_grad():
        xg = shifted.detach().requires_grad_(True)
        value = energy(xg)
        (grad,) = torch.autograd.grad(value.sum(), xg)
    plus = grad[n : n + n * d].reshape(d, n, d)
    minus = grad[n + n * d :].reshape(d, n, d)
    hess = ((plus - minus) / (2 * h[:, None, None])).transpose(0, 1)
    hess = torch.nan_to_num(0.5 * (hess + hess.transpose(1, 2)), nan=0.0, posinf=1e150, neginf=-1e150)
    return value[:n].detach(), grad[:n], hess.clamp(-1e150, 1e150)


def _starts(low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
    d = low.numel()
    generator = torch.Generator().manual_seed(0)
    if d <= 2:
        k = 12
        centres = (torch.arange(k, dtype=torch.float64) + 0.5) / k
        jitter = 0.2 / k * (torch.rand((k**d, d), generator=generator, dtype=torch.float64) - 0.5)
        grid = torch.cartesian_prod(*[centres] * d).reshape(-1, d) + jitter
    else:
        grid = torch.quasirandom.SobolEngine(d, scramble=True, seed=0).draw(256, dtype=torch.float64)
    return low + (high - low) * grid


def _step(grad: torch.Tensor, hess: torch.Tensor, damping: torch.Tensor, newton: bool) -> torch.Tensor:
    """Levenberg-Marquardt step ``-(H + lambda I)^-1 g`` (shifted to be a descent direction), or a
    Newton step on grad U = 0 with eigenvalues kept away from zero."""
    w, v = torch.linalg.eigh(hess)
    scale = 1e-10 * (1 + w.abs().amax(dim=1, keepdim=True))
    if newton:
        w = torch.where(w >= 0, w.clamp_min(scale), w.clamp_max(-scale))
    else:
        w = w + damping[:, None] + (-w.amin(dim=1, keepdim=True)).clamp_min(0) + scale
    coeff = (v.transpose(1, 2) @ grad[:, :, None]).squeeze(2) / w
    return -(v @ coeff[:, :, None]).squeeze(2)


def _descend(energy: _Fn, starts: torch.Tensor, low, high, h, newton: bool, iters: int):
    """Batched damped Newton from ``starts`` inside the box; iterates only on still-active points.

    ``newton=False``: Levenberg-Marquardt with monotone descent (steps that do not lower U are
    rejected and the damping raised). ``newton=True``: plain Newton on grad U = 0 (any critical point).
    A point stops when converged (tiny gradient, no more movement), stuck (damping huge, or Newton
    no longer moving) or held against the box for three iterations in a row.
    """
    x = starts.clone()
    value, grad, hess = _value_grad_hess(energy, x, h)
    alive = torch.isfinite(value) & torch.isfinite(grad).all(dim=1)
    damping = 1e-3 * (1 + hess.flatten(1).norm(dim=1))
    trust = 0.25 * float((high - low).min())
    gscale = float(grad[alive].norm(dim=1).median()) if alive.any() else 1.0
    gtol = 1e-9 * (1 + gscale)
    active = alive.clone()
    walled = torch.zeros(x.shape[0], dtype=torch.long)
    for _ in range(iters):
        idx = active.nonzero().squeeze(1)
        if idx.numel() == 0:
            break
        xa, va, la = x[idx], value[idx], damping[idx]
        step = _step(grad[idx], hess[idx], la, newton)
        length = step.norm(dim=1, keepdim=True)
        step = step * torch.where(length > trust, trust / length, torch.ones_like(length))
        x_new = torch.minimum(torch.maximum(xa + step, low), high)
        v_new, g_new, h_new = _value_grad_hess(energy, x_new, h)
        finite = torch.isfinite(v_new) & torch.isfinite(g_new).all(dim=1)
        accept = finite if newton else finite & (v_new < va)
        x[idx] = torch.where(accept[:, None], x_new, xa)
        value[idx] = torch.where(accept, v_new, va)
        grad[idx] = torch.where(accept[:, None], g_new, grad[idx])
        hess[idx] = torch.where(accept[:, None, None], h_new, hess[idx])
        damping[idx] = torch.where(accept, la / 3, la * 4).clamp(1e-12, 1e20)
        moved = torch.where(accept, (x_new - xa).norm(dim=1), torch.zeros_like(va))
        still = moved <= 1e-12 * trust
        walled[idx] = torch.where(_interior(x[idx], low, high), 0, walled[idx] + 1)
        if newton:
            alive[idx] = alive[idx] & finite
            stop = ~finite | still
        else:
            stop = (still & (grad[idx].norm(dim=1) <= gtol * 1e-3)) | (damping[idx] >= 1e16)
        active[idx] = ~stop & (walled[idx] < 3)
    return x, value, grad, alive, gscale


def _interior(x: torch.Tensor, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
    margin = 1e-6 * (high - low)
    return ((x > low + margin) & (x < high - margin)).all(dim=1)


def _ring(energy: _Fn, x: torch.Tensor, radius: float) -> torch.Tensor:
    """U on a ring of directions around each point, minus U at the point: [M, K]."""
    d = x.shape[1]
    if d == 2:
        angles = torch.arange(16, dtype=torch.float64) * (2 * math.pi / 16)
        dirs = torch.stack([torch.cos(angles), torch.sin(angles)], dim=1)
    else:
        generator = torch.Generator().manual_seed(1)
        rand = torch.randn((32, d), generator=generator, dtype=torch.float64)
        eye = torch.eye(d, dtype=torch.float64)
        dirs = torch.cat([eye, -eye, rand / rand.norm(dim=1, keepdim=True)])
    around = (x[:, None, :] + radius * dirs[None]).reshape(-1, d)
    with torch.no_grad():
        values = energy(around).reshape(x.shape[0], -1)
        centre = energy(x)
    return values - centre[:, None]


def _cluster(x: torch.Tensor, value: torch.Tensor, radius: float) -> list[int]:
    """Indices of cluster representatives (the lowest point of each group closer than ``radius``)."""
    order = torch.argsort(value)
    close = (torch.cdist(x[order], x[order]) <= radius).tolist()
    chosen: list[int] = []
    for i in range(len(close)):
        if not any(close[i][j] for j in chosen):
            chosen.append(i)
    return order[chosen].tolist()


def box_sample(bounds: Sequence[tuple[float, float]], per_axis: int = 65) -> torch.Tensor:
    """Points covering ``bounds``: a ``per_axis``-point grid (edges and centre included) in 1-D and
    2-D, else the centre, the corners (at most 1024) and 4096 Sobol points; ``[M, d]`` float64."""
    low = torch.tensor([b[0] for b in bounds], dtype=torch.float64)
    high = torch.tensor([b[1] for b in bounds], dtype=torch.float64)
    d = low.numel()
    if d <= 2:
        axes = [torch.linspace(0.0, 1.0, per_axis, dtype=torch.float64)] * d
        unit = torch.cartesian_prod(*axes).reshape(-1, d)
    else:
        corners = torch.cartesian_prod(*[torch.tensor([0.0, 1.0], dtype=torch.float64)] * d)[:1024]
        sobol = torch.quasirandom.SobolEngine(d, scramble=True, seed=0).draw(4096, dtype=torch.float64)
        unit = torch.cat([torch.full((1, d), 0.5, dtype=torch.float64), corners.reshape(-1, d), sobol])
    return low * (1 - unit) + high * unit  # not low + (high - low) * unit: high - low may overflow


def first_finite(value_and_grad: Callable, points: torch.Tensor) -> tuple[int | None, int | None]:
    """Index of the first of ``points`` where U is finite and of the first where U and its gradient
    both are (None when there is none)."""
    with torch.no_grad():
        value, grad = value_and_grad(points)
    finite = torch.isfinite(value)
    both = finite & torch.isfinite(grad).all(dim=1)
    first = lambda mask: int(mask.nonzero()[0, 0]) if bool(mask.any()) else None  # noqa: E731
    return first(finite), first(both)


@dataclass(frozen=True)
class _Search:
    points: tuple[CriticalPoint, ...]
    bounded_below: bool
    curvature: float | None


def find_critical_points(energy: _Fn, bounds: Sequence[tuple[float, float]], max_points: int = 16) -> _Search:
    """Minima (and saddles) of ``energy`` strictly inside ``bounds``, found numerically.

    Damped Newton (Levenberg-Marquardt, monotone descent) from a jittered grid of starts; converged
    interior points where U rises on a small ring around them are minima (``smooth=False`` when the
    gradient does not vanish there: a cusp); smooth ones must also have no negative Hessian
    eigenvalue. Lowest -> ``global_min`` (ties included), the others ``local_min``. A plain Newton
    pass on grad U = 0 then collects saddles (indefinite Hessian). Points on the boundary are not
    minima, nor are points where the slope is still steep (the rim of a pole, 1/x near 0).
    ``bounded_below`` is False when no interior point is even a weak (non-isolated) local minimum.
    """
    low = torch.tensor([b[0] for b in bounds], dtype=torch.float64)
    high = torch.tensor([b[1] for b in bounds], dtype=torch.float64)
    span = float((high - low).min())
    h = 1e-7 * (high - low)
    starts = _starts(low, high)
    with torch.no_grad():
        ok = torch.isfinite(energy(starts))
    starts = starts[ok]
    if starts.shape[0] == 0:
        return _Search((), False, None)

    x, value, grad, alive, gscale = _descend(energy, starts, low, high, h, newton=False, iters=100)
    gtol = 1e-9 * (1 + gscale)
    # a minimum is interior, with a bounded slope (a cusp may have one; a pole's grows without end)
    steep = grad.norm(dim=1) > 1e3 * (1 + gscale)
    keep = alive & _interior(x, low, high) & torch.isfinite(value) & ~steep
    x, value, grad = x[keep], value[keep], grad[keep]
    minima: list[CriticalPoint] = []
    bounded_below = False
    curvature: float | None = None
    if x.shape[0]:
        tol = 1e-12 * (1 + value.abs())
        near = _ring(energy, x, 1e-3 * span)
        far = _ring(energy, x, 1e-2 * span)
        weak = (near >= -tol[:, None]).all(dim=1)
        strict = weak & ((near > tol[:, None]).all(dim=1) | (far > tol[:, None]).all(dim=1))
        bounded_below = bool(weak.any())
        x, value, grad = x[strict], value[strict], grad[strict]
        reps = _cluster(x, value, 2e-3 * span)
        x, value, grad = x[reps], value[reps], grad[reps]
        smooth = grad.norm(dim=1) <= gtol * 1e3
        if x.shape[0]:
            eig = torch.linalg.eigvalsh(torch.nan_to_num(_value_grad_hess(energy, x, h)[2]))
            bad = smooth & (eig[:, 0] < -1e-6 * (1 + eig.abs().amax(dim=1)))
            tops = eig[smooth & ~bad, -1]
            curvature = float(tops.max()) if tops.numel() else None
            x, value, smooth = x[~bad], value[~bad], smooth[~bad]
        if x.shape[0]:
            best = float(value.min())
            tie = 1e-8 * (1 + abs(best))
            found = []
            for i in range(x.shape[0]):
                position = tuple(float(c) for c in x[i])
                is_global = float(value[i]) <= best + tie
                # globals first, ordered by position (deterministic ids for symmetric minima)
                key = (0, 0.0, position) if is_global else (1, float(value[i]), position)
                found.append((key, position, float(value[i]), bool(smooth[i])))
            found.sort(key=lambda item: item[0])
            for rank, (key, position, val, is_smooth) in enumerate(found[:max_points], start=1):
                kind = "global_min" if key[0] == 0 else "local_min"
                minima.append(CriticalPoint(f"min{rank}", kind, position, val, smooth=is_smooth))  # type: ignore[arg-type]

    saddles: list[CriticalPoint] = []
    xs, vs, gs, alive_s, _ = _descend(energy, starts, low, high, h, newton=True, iters=40)
    keep = alive_s & _interior(xs, low, high) & (gs.norm(dim=1) <= gtol * 1e3)
    xs, vs = xs[keep], vs[keep]
    if xs.shape[0]:
        reps = _cluster(xs, vs, 2e-3 * span)
        xs, vs = xs[reps], vs[reps]
        eig = torch.linalg.eigvalsh(torch.nan_to_num(_value_grad_hess(energy, xs, h)[2]))
        eps = 1e-6 * (1 + eig.abs().amax(dim=1))
        indefinite = (eig[:, 0] < -eps) & (eig[:, -1] > eps)
        xs, vs = xs[indefinite], vs[indefinite]
        for rank in range(min(xs.shape[0], max_points)):
            saddles.append(
                CriticalPoint(
                    f"saddle{rank + 1}", "saddle", tuple(float(c) for c in xs[rank]), float(vs[rank])
                )
            )
    return _Search(tuple(minima) + tuple(saddles), bounded_below or bool(minima), curvature)
