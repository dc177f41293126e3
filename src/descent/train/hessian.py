"""Curvature of a loss from Hessian-vector products: the top eigenvalues (sharpness) by Lanczos, the
trace by Hutchinson, sharpness tracked along a run, and Adam's preconditioned sharpness.

Everything works on a scalar loss ``L(theta)`` of a flat float64 parameter vector ``theta [P]``. For a
``torch.nn.Module``, a loss and data, `descent.train.models.functional_loss` makes one (through
``torch.func.functional_call``) and `descent.train.models.flat_parameters` gives its ``theta``. The
Hessian is never formed: `HessianOperator` builds the gradient's graph once at ``theta``, and each
product ``H v = d(g . v)/d theta`` is one more backward pass through it (double backprop).

- `top_eigenvalues`: the ``k`` largest algebraic eigenvalues of ``H`` (or of ``P^-1 H``) by scipy's
  ``eigsh`` (implicitly restarted Lanczos, ARPACK) on a float64 ``LinearOperator`` of products.
- `hutchinson_trace`: ``tr H = E[z^T H z]`` over Rademacher probes ``z``; one probe's variance is
  ``2 sum_{i != j} H_ij^2``, so the standard error falls like ``1/sqrt(samples)``.
- `SharpnessTracker`: every ``k`` steps, thick-restart Lanczos (`ritz_refine`) from the previous check's
  two top Ritz vectors (3 products per check), and optionally a cold ``eigsh`` to check it against.
- preconditioned sharpness: ``lambda_max(P^-1 H)`` with ``P = diag(scale)`` is the top eigenvalue of
  the symmetric ``P^-1/2 H P^-1/2`` (``scale=`` everywhere); `adam_preconditioner` reads Adam's ``P``.

>>> from descent.train import build_model, flat_parameters, functional_loss, loss_function
>>> model = build_model("mlp:8", 4, 3, activation="tanh", seed=0)
>>> x = torch.randn(20, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
>>> y = torch.arange(20) % 3
>>> loss, theta = functional_loss(model, loss_function("mse", "classification"), x, y), flat_parameters(model)
>>> exact = torch.linalg.eigvalsh(torch.autograd.functional.hessian(loss, theta))
>>> top = top_eigenvalues(loss, theta, k=2)
>>> [abs(value / float(exact[-1 - i]) - 1) < 1e-9 for i, value in enumerate(top.values)]
[True, True]
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from descent._errors import check_number, invalid, listed

LossFn = Callable[[torch.Tensor], torch.Tensor]


# --- the operator ----------------------------------------------------------------------------------
class HessianOperator:
    """``v -> H v`` at ``theta`` (optionally ``v -> D H D v`` with ``D = diag(scale)^-1/2``).

    The gradient ``g(theta)`` is computed once with its graph kept (``create_graph``); each product is
    ``d(g . v)/d theta``, one backward pass through that graph. ``products`` counts them.
    """

    def __init__(self, loss_fn: LossFn, theta: torch.Tensor, scale: torch.Tensor | None = None) -> None:
        theta = _check_theta(theta)
        self.size = theta.numel()
        self.dtype, self.device = theta.dtype, theta.device
        self.root = None if scale is None else torch.rsqrt(_check_scale(scale, theta))
        self._theta = theta.detach().clone().requires_grad_(True)
        with torch.enable_grad():
            value = loss_fn(self._theta)
            if value.numel() != 1:
                raise invalid("loss_fn(theta)", tuple(value.shape), "a scalar")
            (self._grad,) = torch.autograd.grad(value, self._theta, create_graph=True)
        self.value = float(value.detach())
        self.gradient = self._grad.detach()
        self.products = 0

    def __call__(self, v: torch.Tensor) -> torch.Tensor:
        v = v.to(self.dtype).reshape(self.size)
        if self.root is not None:
            v = self.root * v
        if self._grad.grad_fn is None:  # a loss linear in theta: H = 0
            hv = torch.zeros_like(v)
        else:
            (hv,) = torch.autograd.grad(self._grad, self._theta, grad_outputs=v, retain_graph=True)
        self.products += 1
        hv = hv.detach()
        return hv if self.root is None else self.root * hv

    def linear_operator(self):
        """The operator as a float64 ``scipy.sparse.linalg.LinearOperator`` on numpy vectors."""
        from scipy.sparse.linalg import LinearOperator

        def matvec(x: np.ndarray) -> np.ndarray:
            v = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float64).reshape(-1))
            return self(v.to(self.device)).to(torch.float64).cpu().numpy()

        return LinearOperator((self.size, self.size), matvec=matvec, dtype=np.float64)


def hvp(loss_fn: LossFn, theta: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """The Hessian-vector product ``H(theta) v`` by double backprop.

    >>> import torch
    >>> loss = lambda w: (w[0] ** 2) * w[1]  # H = [[2 w1, 2 w0], [2 w0, 0]]
    >>> w, v = torch.tensor([1.0, 3.0], dtype=torch.float64), torch.tensor([1.0, 0.0], dtype=torch.float64)
    >>> hvp(loss, w, v)
    tensor([6., 2.], dtype=torch.float64)
    """
    theta = _check_theta(theta)
    if v.shape != theta.shape:
        raise invalid("v", tuple(v.shape), f"a vector shaped like theta, ({theta.numel()},)")
    return HessianOperator(loss_fn, theta)(v)


# --- Lanczos: the top eigenvalues ------------------------------------------------------------------
@dataclass(frozen=True)
class Eigen:
    """Eigenvalues (largest first), their unit eigenvectors ``[P, k]`` and the products used."""

    values: list[float]
    vectors: torch.Tensor
    products: int


def top_eigenvalues(
    loss_fn: LossFn,
    theta: torch.Tensor,
    k: int = 1,
    *,
    tol: float = 1e-10,
    v0: torch.Tensor | None = None,
    seed: int = 0,
    scale: torch.Tensor | None = None,
    ncv: int | None = None,
    maxiter: int | None = None,
) -> Eigen:
    """The ``k`` largest algebraic eigenvalues of the Hessian at ``theta`` (the first is the sharpness),
    by scipy's ``eigsh(which="LA")`` on a ``LinearOperator`` of Hessian-vector products.

    ``tol``: ARPACK's relative accuracy of the Ritz values (0: machine precision). ``v0``: the start
    vector (a previous eigenvector warm-starts it); without one, a Gaussian vector from ``seed``.
    ``scale``: the diagonal of a preconditioner ``P`` (positive, ``[P]``); then the values are those
    of ``P^-1 H`` (computed on ``P^-1/2 H P^-1/2``, whose eigenvectors are returned). ``ncv``: the
    Lanczos basis's size (ARPACK's default ``max(2k + 1, 20)``; a warm start needs fewer, and each
    restart costs about ``ncv - k`` products).
    """
    from scipy.sparse.linalg import eigsh

    operator = HessianOperator(loss_fn, theta, scale)
    n = operator.size
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k < n:
        raise invalid("k", k, f"an integer in [1, {n - 1}] (fewer than the {n} parameters)")
    check_number("tol", tol, 0.0)
    if ncv is not None and (isinstance(ncv, bool) or not isinstance(ncv, int) or not k < ncv <= n):
        raise invalid("ncv", ncv, f"None or an integer in [{k + 1}, {n}]")
    start = _start_vector(v0, n, seed)
    values, vectors = eigsh(
        operator.linear_operator(), k=k, which="LA", tol=tol, v0=start, ncv=ncv, maxiter=maxiter
    )
    order = np.argsort(values)[::-1]
    vectors = torch.from_numpy(np.ascontiguousarray(vectors[:, order])).to(operator.device)
    return Eigen([float(v) for v in values[order]], vectors, operator.products)


def _start_vector(v0: torch.Tensor | None, n: int, seed: int) -> np.ndarray:
    if v0 is None:
        return np.random.default_rng(seed).standard_normal(n)
    start = v0.detach().to(torch.float64).cpu().reshape(-1).numpy()
    if start.size != n or not np.all(np.isfinite(start)) or not np.any(start):
        raise invalid("v0", f"a vector of {start.size} values", f"{n} finite values, not all 0")
    return start


# --- Hutchinson: the trace --------------------------------------------------------------------------
@dataclass(frozen=True)
class Trace:
    """Hutchinson's estimate of ``tr H``: the mean of ``z^T H z`` over Rademacher probes, its standard
    error ``sd/sqrt(samples)`` and the probes' values."""

    mean: float
    se: float
    samples: list[float]


def hutchinson_trace(
    loss_fn: LossFn, theta: torch.Tensor, samples: int, seed: int, *, scale: torch.Tensor | None = None
) -> Trace:
    """``tr H ~ (1/n) sum_s z_s^T H z_s`` with ``z_s`` uniform on ``{-1, +1}^P`` (unbiased); one probe's
    variance is ``2 sum_{i != j} H_ij^2``. With ``scale``, the trace of ``P^-1 H``.

    >>> import torch
    >>> loss = lambda w: w[0] ** 2 + 3 * w[1] ** 2  # H = diag(2, 6): every probe gives exactly 8
    >>> hutchinson_trace(loss, torch.zeros(2, dtype=torch.float64), samples=4, seed=0)
    Trace(mean=8.0, se=0.0, samples=[8.0, 8.0, 8.0, 8.0])
    """
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 2:
        raise invalid("samples", samples, "an integer >= 2 (a standard error needs two)")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise invalid("seed", seed, "an integer >= 0")
    operator = HessianOperator(loss_fn, theta, scale)
    generator = torch.Generator(device="cpu").manual_seed(seed)
    values = []
    for _ in range(samples):
        z = torch.randint(0, 2, (operator.size,), generator=generator, dtype=torch.int64)
        z = (2 * z - 1).to(dtype=operator.dtype, device=operator.device)
        values.append(float(z @ operator(z)))
    mean = math.fsum(values) / samples
    variance = math.fsum((x - mean) ** 2 for x in values) / (samples - 1)
    return Trace(mean, math.sqrt(variance / samples), values)


# --- tracking along a run ---------------------------------------------------------------------------
def ritz_refine(
    operator: Callable[[torch.Tensor], torch.Tensor], vectors: torch.Tensor, products: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Thick-restart Lanczos with ``products`` products: the ``b`` columns of ``vectors [P, b]``
    (orthonormalised; ``b <= products``) each get one product, then ``products - b`` Lanczos steps
    expand the space by the residual ``H y - theta y`` of its top Ritz pair (one product each, full
    reorthogonalisation). Returns the Ritz values of ``H`` on that space (largest first) and their
    unit Ritz vectors ``[P, m]``. From one vector it is ``span{v, H v, ..., H^(products-1) v}``. Every
    Ritz value is a Rayleigh quotient over the space, so the largest never exceeds ``lambda_max``.
    """
    basis = _orthonormal(list(vectors.T))
    if len(basis) > products:
        raise invalid("vectors", f"{len(basis)} columns", f"at most products = {products}")
    # the basis Q and its images H Q as rows of buffers, and Q^T H Q grown by its new row and column
    # at each step (restacking the vectors, or recomputing Q^T H Q, costs O(d m^2) a step: on a
    # 300k-weight network most of a 12-product first check)
    q_rows = torch.empty(products, vectors.shape[0], dtype=vectors.dtype, device=vectors.device)
    image_rows = torch.empty_like(q_rows)
    for m, v in enumerate(basis):
        q_rows[m] = v
        image_rows[m] = operator(v)
    m = len(basis)
    projected = torch.empty(products, products, dtype=vectors.dtype, device=vectors.device)
    projected[:m, :m] = q_rows[:m] @ image_rows[:m].T  # [i, j] = q_i . H q_j
    while True:
        q, images = q_rows[:m], image_rows[:m]
        values, rotation = torch.linalg.eigh(0.5 * (projected[:m, :m] + projected[:m, :m].T))
        values, rotation = values.flip(0), rotation.flip(1)
        if m == products:
            break
        image = rotation[:, 0] @ images  # H y for the top Ritz vector y
        residual = image - values[0] * (rotation[:, 0] @ q)
        # the residual of a Ritz pair is orthogonal to the space in exact arithmetic: one classical
        # Gram-Schmidt pass against the whole basis restores it in floating point
        added = residual - (q @ residual) @ q
        size, residual_size = torch.linalg.vector_norm(added), torch.linalg.vector_norm(residual)
        if size <= 1e-10 * residual_size or residual_size <= 1e-12 * torch.linalg.vector_norm(image):
            break  # an invariant subspace: the top Ritz pair is exact already
        q_rows[m] = added / size
        image_rows[m] = operator(q_rows[m])
        projected[: m + 1, m] = q_rows[: m + 1] @ image_rows[m]
        projected[m, :m] = image_rows[:m] @ q_rows[m]  # q_m . H q_j, j < m
        m += 1
    ritz = rotation.T @ q  # [k, P]: the Ritz vectors as rows
    return values, (ritz / torch.linalg.vector_norm(ritz, dim=1, keepdim=True)).T


def _orthonormal(new: list[torch.Tensor]) -> list[torch.Tensor]:
    """The vectors of ``new`` orthonormalised against each other (Gram-Schmidt twice: "twice is
    enough"); a vector left with less than 1e-10 of its norm is dropped."""
    out: list[torch.Tensor] = []
    for v in new:
        w = v.clone()
        for _ in range(2):
            for q in out:
                w -= (q @ w) * q
        norm = torch.linalg.vector_norm(w)
        if norm > 1e-10 * torch.linalg.vector_norm(v):
            out.append(w / norm)
    return out


def lanczos_refine(operator: Callable[[torch.Tensor], torch.Tensor], v: torch.Tensor, steps: int = 3):
    """``steps`` Lanczos steps from ``v`` (one product each, full reorthogonalisation): the largest
    Ritz value of ``H`` on the Krylov space ``span{v, H v, ..., H^(steps-1) v}`` and its unit Ritz
    vector (`ritz_refine` from one vector). The Ritz value is the largest Rayleigh quotient over that
    whole space, so it is at least what ``steps`` power steps and a Rayleigh quotient give, and never
    above ``lambda_max``.
    """
    values, vectors = ritz_refine(operator, v.reshape(-1, 1), steps)
    return float(values[0]), vectors[:, 0]


FIRST_CHECKS = ("eigsh", "random")  # how the tracker's first check starts
RANDOM_FIRST_PRODUCTS = 12  # the products of a first="random" check (a Krylov space of that size)


@dataclass
class SharpnessTracker:
    """The sharpness along a run, cheaply: call it at every step; every ``every`` steps it spends
    ``products`` (3 by default) Hessian-vector products by thick-restart Lanczos (`ritz_refine`): the
    ``keep`` (2 by default) top Ritz vectors of the previous check each get one product at the new
    point, and the remaining ``products - keep`` are Lanczos steps from the top Ritz pair's residual.
    The value is the largest Ritz value on that space (a Rayleigh quotient: never above
    ``lambda_max``); the next check starts from the ``keep`` top Ritz vectors. ``keep=1`` is plain
    Lanczos from the previous top eigenvector.

    Why keep two: between two checks the top eigenvector turns only a little, so the Krylov filter
    ``p(H) v`` (degree ``products - 1``) damps the bulk's share of the previous vector ``v``. It cannot
    separate eigenvalues close to ``lambda_1``; when two of them cross, one vector follows the branch
    that sinks. Two kept vectors hold both branches, and the Rayleigh-Ritz step picks the larger: on a
    quadratic family whose top two eigenvalues cross, keep 2 stays exact where keep 1 follows the
    falling one (tests/train/test_hessian.py).

    Where it is not accurate, measured (benchmarks/bench_sharpness.py --accuracy): at the edge of
    stability five or more eigenvalues crowd within 10 % of ``lambda_max`` and exchange places within
    10 steps; a direction whose curvature was the top falls by 20 % while another rises. On the
    digits MLP 64-64-64-10 (MSE, first 1000 images, full-batch GD), k = 10, 2000 steps, against a cold
    eigsh at every 100th step, the largest error at those 20 checkpoints and how many were within 1 %:

    ========================  =================  =================
    products, keep            lr 0.1: max, <1 %  lr 0.2: max, <1 %
    ========================  =================  =================
    3, keep 2 (the default)   2.8 %, 14/20       8.1 %, 4/20
    3, keep 1                 17 %, 12/20        8.8 %, 8/20
    8, keep 1                 0.90 %, 20/20      0.58 %, 20/20
    8, keep 2                 0.25 %, 20/20      1.6 %, 19/20
    ========================  =================  =================

    Over all 200 checks (cold eigsh at each, offline), keep 2 with 3 products was within 1 % at 156
    (lr 0.1) and 43 (lr 0.2), keep 1 at 117 and 60; its mean error 0.69 % and 2.8 % against 1.8 % and
    3.2 %. With more products keep 1 does better at lr 0.2 (4 products: 5.8 % against 9.9 %); 8
    products with keep 1 meet 1 % at every checkpoint of both runs. The issue's 1 % with 3 products is
    not met. Other 3-product schemes measured did worse (3-vector subspace iteration with
    Rayleigh-Ritz: 4.0 % and 8.1 %; the gradient as a third vector; 8 stale Ritz vectors choosing the 3
    refreshed), and what the previous check knows does not suffice even when exact: Rayleigh-Ritz at
    the new point on the previous check's exact top 8 eigenvectors (8 products) is off by up to 3.9 %
    (lr 0.1) and 2.1 % (lr 0.2) at the checkpoints, 3 Lanczos steps from its exact top eigenvector by
    up to 4.5 % and 2.6 %. Before the edge (lr 0.1, steps 100 to 700) only step 100 misses, by 1.9 %,
    where the top two eigenvalues are 5 % apart (7.40, 7.04) and the spectrum still moves fast; at
    lr 0.2 the sharpness is at the edge by step 100 (2.2 % off there).

    The first check has no previous vectors: it runs a cold ``eigsh`` (tolerance ``tol``, its ``keep``
    top eigenvectors), or with ``first="random"`` ``RANDOM_FIRST_PRODUCTS`` Lanczos products from ``keep``
    seeded random vectors (no eigsh to convergence: rougher at first, sharpened check by check; the
    monitor's choice). With ``cold_every``, every step that is a multiple of it also runs a cold
    ``eigsh`` (from ``seed``, not from the tracked vectors) and records it beside the tracked value, to
    check the tracker; the tracked vectors are never replaced by the cold ones.
    """

    every: int = 10
    products: int = 3
    cold_every: int | None = None
    tol: float = 1e-10
    seed: int = 0
    keep: int = 2
    first: str = "eigsh"
    steps: list[int] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    hvps: list[int] = field(default_factory=list)
    cold_steps: list[int] = field(default_factory=list)
    cold_values: list[float] = field(default_factory=list)
    cold_hvps: list[int] = field(default_factory=list)
    vector: torch.Tensor | None = None
    ritz_vectors: torch.Tensor | None = None

    def __post_init__(self) -> None:
        for name, value, low in (("every", self.every, 1), ("products", self.products, 1)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise invalid(name, value, f"an integer >= {low}")
        if (
            isinstance(self.keep, bool)
            or not isinstance(self.keep, int)
            or not 1 <= self.keep <= self.products
        ):
            raise invalid("keep", self.keep, f"an integer in [1, products = {self.products}]")
        if self.cold_every is not None and (
            isinstance(self.cold_every, bool) or not isinstance(self.cold_every, int) or self.cold_every < 1
        ):
            raise invalid("cold_every", self.cold_every, "None or an integer >= 1")
        check_number("tol", self.tol, 0.0)
        if self.first not in FIRST_CHECKS:
            raise invalid("first", self.first, f"one of: {listed(FIRST_CHECKS)}")

    def due(self, step: int) -> bool:
        """Whether ``step`` is a check (a multiple of ``every``) or a cold check."""
        return step % self.every == 0 or (self.cold_every is not None and step % self.cold_every == 0)

    def __call__(
        self, step: int, loss_fn: LossFn, theta: torch.Tensor, scale: torch.Tensor | None = None
    ) -> float | None:
        """At a check, the tracked sharpness at ``theta`` (of ``P^-1 H`` with ``scale``); else None."""
        if not self.due(step):
            return None
        value = None
        if self.cold_every is not None and step % self.cold_every == 0:
            cold = self._cold(step, loss_fn, theta, scale, 1 if self.vector is not None else self.keep)
            self.cold_steps.append(step)
            self.cold_values.append(cold.values[0])
            self.cold_hvps.append(cold.products)
            if self.vector is None:
                value, used = cold.values[0], 0
                self._hold(cold.vectors)
        if step % self.every == 0 and value is None:
            if self.vector is None and self.first == "eigsh":
                cold = self._cold(step, loss_fn, theta, scale, self.keep)
                value, used = cold.values[0], cold.products
                self._hold(cold.vectors)
            else:
                operator = HessianOperator(loss_fn, theta, scale)
                if self.ritz_vectors is not None:
                    values, vectors = ritz_refine(operator, self.ritz_vectors, self.products)
                else:  # first="random": a longer Lanczos run once, then the usual few products
                    first = max(self.products, RANDOM_FIRST_PRODUCTS)
                    values, vectors = ritz_refine(operator, self._random(theta), first)
                value, used = float(values[0]), operator.products
                self._hold(vectors)
        if value is None:
            return None
        self.steps.append(step)
        self.values.append(value)
        self.hvps.append(used)
        return value

    def _cold(self, step: int, loss_fn: LossFn, theta: torch.Tensor, scale, k: int) -> Eigen:
        k = max(1, min(k, theta.numel() - 1))
        return top_eigenvalues(loss_fn, theta, k=k, tol=self.tol, seed=self.seed + step, scale=scale)

    def _random(self, theta: torch.Tensor) -> torch.Tensor:
        """``first="random"``: ``keep`` seeded Gaussian vectors ``[P, keep]``, orthonormalised."""
        generator = torch.Generator().manual_seed(self.seed)
        shape = (theta.numel(), min(self.keep, theta.numel()))
        vectors = torch.randn(shape, generator=generator, dtype=torch.float64)
        return torch.linalg.qr(vectors.to(theta.device))[0]

    def _hold(self, vectors: torch.Tensor) -> None:
        """Keep the ``keep`` top Ritz vectors for the next check (the first is ``vector``)."""
        self.ritz_vectors = vectors[:, : min(self.keep, self.products)]
        self.vector = self.ritz_vectors[:, 0]

    def tracked_at(self, steps: Sequence[int]) -> list[float]:
        """The tracked values at ``steps`` (each must be a check)."""
        where = dict(zip(self.steps, self.values))
        return [where[s] for s in steps]


# --- preconditioners --------------------------------------------------------------------------------
def adam_preconditioner(optimizer: torch.optim.Optimizer, params: Sequence[torch.Tensor]) -> torch.Tensor:
    """Adam's preconditioner as the flat diagonal ``[P]`` over ``params`` (in order), as Cohen et al.
    (2022, "Adaptive gradient methods at the edge of stability", arXiv:2207.14484, section 2) define it:

        P = (1 - beta1^t) (sqrt(v / (1 - beta2^t)) + eps),

    so that Adam with ``P`` frozen is the heavy ball ``w <- w - lr (1 - beta1) P^-1 m``-like iteration
    whose edge is ``lambda_max(P^-1 H) = (2 + 2 beta1)/((1 - beta1) lr)`` (38/lr at beta1 = 0.9). The
    factor ``1 - beta1^t`` (Adam's first-moment bias correction) is 1 after a few dozen steps.
    ``optimizer``: torch's ``Adam`` or descent's ``TorchOptimizer(..., "adam")`` (both keep
    ``exp_avg_sq`` and ``step`` per parameter and ``betas``, ``eps`` per group).
    """
    group_of = {id(p): group for group in optimizer.param_groups for p in group["params"]}
    parts = []
    for p in params:
        state = optimizer.state.get(p, {})
        if "exp_avg_sq" not in state or id(p) not in group_of:
            raise invalid(
                "optimizer", type(optimizer).__name__, "an Adam optimizer that has stepped these params"
            )
        group = group_of[id(p)]
        beta1, beta2 = group["betas"]
        t = float(state["step"])
        v_hat = state["exp_avg_sq"].reshape(-1) / (1.0 - beta2**t)
        parts.append((1.0 - beta1**t) * (torch.sqrt(v_hat) + group["eps"]))
    return torch.cat(parts).to(torch.float64)


# --- checks -----------------------------------------------------------------------------------------
def _check_theta(theta: object) -> torch.Tensor:
    if not isinstance(theta, torch.Tensor) or theta.ndim != 1 or not theta.is_floating_point():
        shape = tuple(theta.shape) if isinstance(theta, torch.Tensor) else type(theta).__name__
        raise invalid("theta", shape, "a flat floating-point tensor [P]")
    if theta.numel() < 1:
        raise invalid("theta", (0,), "at least one parameter")
    return theta


def _check_scale(scale: object, theta: torch.Tensor) -> torch.Tensor:
    if not isinstance(scale, torch.Tensor) or scale.shape != theta.shape:
        raise invalid(
            "scale", getattr(scale, "shape", scale), f"a tensor shaped like theta, ({theta.numel()},)"
        )
    if not bool(torch.all(torch.isfinite(scale) & (scale > 0))):
        raise invalid("scale", "a tensor with a value <= 0 or not finite", "positive finite values")
    return scale.to(theta.dtype)
