"""Engine v2's counter-based random stream (:mod:`descent.random`) as Numba functions.

A generated kernel draws a particle's numbers where it needs them, with no state to carry::

    from descent.kernels.stream import PURPOSE_LANGEVIN, counter_key, normal_at

    key = counter_key(seed, PURPOSE_LANGEVIN, particle, step)   # once per (particle, step)
    noise = F(normal_at(key, k))                                 # the k-th normal, k = 0, 1, ...

The stream, in unsigned 64-bit arithmetic (multiplication and addition wrap modulo 2^64)::

    mix(z)   = z ^= z >> 30; z *= MUL1; z ^= z >> 27; z *= MUL2; z ^ (z >> 31)     (SplitMix64)
    key      = mix(mix(mix(mix(seed) ^ purpose) ^ particle) ^ step)
    bits(j)  = mix(key + (j + 1) * GOLDEN)                          j = 0, 1, 2, ...
    u_j      = (bits(j) >> 11) * 2^-53                              in [0, 1), float64
    normal_k = sqrt(-2 log1p(-u_{2k})) * cos((2 pi) u_{2k+1})       Box-Muller, cosine branch

``counter_key`` and ``bits_at`` equal :func:`descent.random.counter_key` and
:func:`descent.random.random_bits` bit for bit, ``uniform_at(key, j)`` column ``j`` of
:func:`descent.random.uniform` bit for bit. ``normal_at(key, k)`` is column ``k`` of
:func:`descent.random.normal` computed with the C library's ``log1p`` and ``cos`` (those of Python's
:mod:`math`): torch's CPU kernels use SLEEF's vectorised ones (1-ULP accurate, not correctly
rounded), so about 5 % of the normals differ from torch's by 1 to 3 ULP; the integer stream and the
uniforms never do. Both are float64: a float32 kernel casts with ``F(...)``, as the torch engine
casts its float64 draws to the run's dtype.

Integer typing: Numba promotes uint64 mixed with int64 to float64, so every operand is cast to
``np.uint64`` first and the constants are ``np.uint64``; an int64 argument (a negative one included)
is taken as the uint64 with the same bits, like torch's int64 arithmetic in :mod:`descent.random`.
Hand a seed to a compiled function as :func:`as_uint64` ``(seed)``: a Python int >= 2^63 passed to a
dispatcher that already compiled an int64 signature raises ``OverflowError`` (Numba 0.68).

The functions are compiled with ``fastmath=False`` set explicitly (and ``cache=True``,
``error_model="numpy"``). Numba compiles a callee under its caller's fast-math flags unless the
callee sets its own: inside a kernel built with ``fastmath={"contract"}`` the last product of
``normal_at`` would otherwise carry LLVM's ``contract`` flag and ``x + normal_at(key, k)`` become a
fused multiply-add, a different number from torch's. LLVM still inlines them into the kernel
(they are small); Numba's IR-level ``inline="always"`` is not used, as it lowers the body under the
caller's flags. Numba's disk cache keys a kernel on its own source file only: after changing this
module, clear the kernel cache (:func:`descent.kernels.cache_dir`).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from descent.random import GOLDEN as _GOLDEN_INT
from descent.random import MASK64, PURPOSES
from descent.random import MUL1 as _MUL1_INT
from descent.random import MUL2 as _MUL2_INT

#: what a draw is for (:data:`descent.random.PURPOSES`): separate streams that never collide
PURPOSE: dict[str, int] = dict(PURPOSES)
PURPOSE_LANGEVIN = PURPOSES["langevin"]
PURPOSE_GRAD_NOISE = PURPOSES["grad_noise"]
PURPOSE_BATCH = PURPOSES["batch"]
PURPOSE_SHUFFLE = PURPOSES["shuffle"]
PURPOSE_STARTS = PURPOSES["starts"]

GOLDEN = np.uint64(_GOLDEN_INT)
MUL1 = np.uint64(_MUL1_INT)
MUL2 = np.uint64(_MUL2_INT)
_ONE = np.uint64(1)
_S11 = np.uint64(11)
_S27 = np.uint64(27)
_S30 = np.uint64(30)
_S31 = np.uint64(31)
_TWO_POW_M53 = 2.0**-53
_TWO_PI = 2.0 * math.pi

_FLAGS = {"cache": True, "error_model": "numpy", "fastmath": False}


def as_uint64(value: int) -> np.uint64:
    """A Python integer as the uint64 with its low 64 bits (host side: a seed for a kernel's arguments)."""
    return np.uint64(int(value) & MASK64)


@njit(**_FLAGS)
def mix64(z):
    """SplitMix64's finaliser on one uint64 (any integer argument is taken as its 64 bits)."""
    z = np.uint64(z)
    z = (z ^ (z >> _S30)) * MUL1
    z = (z ^ (z >> _S27)) * MUL2
    return z ^ (z >> _S31)


@njit(**_FLAGS)
def counter_key(seed, purpose, particle, step):
    """The uint64 key of one particle's draws at ``step`` (:func:`descent.random.counter_key`)."""
    key = mix64(mix64(np.uint64(seed)) ^ np.uint64(purpose))
    key = mix64(key ^ np.uint64(particle))
    return mix64(key ^ np.uint64(step))


@njit(**_FLAGS)
def bits_at(key, j):
    """Word ``j`` (0, 1, ...) of ``key``'s stream: ``mix(key + (j + 1) * GOLDEN)`` (uint64)."""
    return mix64(np.uint64(key) + (np.uint64(j) + _ONE) * GOLDEN)


@njit(**_FLAGS)
def uniform_at(key, j):
    """Uniform ``j`` of ``key``'s stream, float64 in [0, 1): the top 53 bits of word ``j``."""
    return np.float64(bits_at(key, j) >> _S11) * _TWO_POW_M53


@njit(**_FLAGS)
def normal_at(key, k):
    """Normal ``k`` of ``key``'s stream, float64, from uniforms ``2k`` (radius) and ``2k + 1`` (angle)."""
    k2 = np.uint64(k) + np.uint64(k)
    radius = math.sqrt(-2.0 * math.log1p(-uniform_at(key, k2)))
    return radius * math.cos(_TWO_PI * uniform_at(key, k2 + _ONE))
