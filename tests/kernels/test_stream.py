"""descent.kernels.stream, compiled, against descent.random.

- mix64, the keys, the words and the uniforms equal descent.random's (torch and pure-Python
  references) bit for bit, for seeds 0 .. 2^64 - 1 (near 2^63 and 2^64 included), every purpose,
  particles and steps from 0 to near 2^63 (steps to 2^64 - 1) and indices j far down the stream;
- normal_at(key, k) equals Box-Muller on uniforms 2k and 2k + 1 with Python's math (the same C
  library as Numba) bit for bit, and torch's normal within 4 ULP (torch's CPU log1p and cos are
  SLEEF's, not correctly rounded: about 5 % of its normals differ by 1 to 3 ULP);
- inside a parallel kernel built like a generated one (fastmath={"contract"}), x + normal_at(...)
  is the sum of x and the draw, not a fused multiply-add.

Every function is called through an @njit wrapper, so the compiled code is what is tested; the
wrappers are not cached (cache=True would keep them compiled against an earlier stream.py, whose
functions LLVM inlined into them).
"""

import math

import numpy as np
import torch
from numba import njit, prange

from descent import random as reference
from descent.kernels.stream import (
    PURPOSE,
    PURPOSE_BATCH,
    PURPOSE_GRAD_NOISE,
    PURPOSE_LANGEVIN,
    PURPOSE_SHUFFLE,
    PURPOSE_STARTS,
    as_uint64,
    bits_at,
    counter_key,
    mix64,
    normal_at,
    uniform_at,
)

torch.set_num_threads(1)

SEEDS = (0, 1, 7, 12345, 2**32 + 1, 2**63 - 2, 2**63 - 1, 2**63, 2**63 + 1, 2**64 - 2, 2**64 - 1)
PARTICLES = np.array(
    [0, 1, 2, 3, 17, 999, 2**31 - 1, 2**31, 2**32 + 5, 2**40 + 12, 2**62, 2**63 - 2, 2**63 - 1], np.int64
)
STEPS = (0, 1, 2, 1000, 2**31, 2**53 + 1, 2**63 - 1, 2**63, 2**64 - 1)
COUNT = 24  # normals per key (48 uniforms)


@njit
def _mix_all(z):
    out = np.empty_like(z)
    for i in range(z.shape[0]):
        out[i] = mix64(z[i])
    return out


@njit
def _draw(seed, purpose, particles, step, count):
    """Keys [N], uniforms [N, 2 count] and normals [N, count] of each particle at ``step``."""
    n = particles.shape[0]
    keys = np.empty(n, np.uint64)
    u = np.empty((n, 2 * count))
    z = np.empty((n, count))
    for i in range(n):
        key = counter_key(seed, purpose, particles[i], step)
        keys[i] = key
        for j in range(2 * count):
            u[i, j] = uniform_at(key, j)
        for k in range(count):
            z[i, k] = normal_at(key, k)
    return keys, u, z


@njit
def _far(key, index):
    """Word, uniform and normal at each of ``index`` (uint64) of one key's stream."""
    n = index.shape[0]
    words = np.empty(n, np.uint64)
    u = np.empty(n)
    z = np.empty(n)
    for i in range(n):
        words[i] = bits_at(key, index[i])
        u[i] = uniform_at(key, index[i])
        z[i] = normal_at(key, index[i])
    return words, u, z


@njit(parallel=True, fastmath={"contract"}, error_model="numpy")
def _langevin_like(x, seed, step):
    """x[i, k] + normal k of particle i (k = 0, 1), as a generated kernel adds its noise: written
    out, not in a loop over k, where LLVM would fuse a contractable product into the addition."""
    out = np.empty_like(x)
    for i in prange(x.shape[0]):
        key = counter_key(seed, PURPOSE_LANGEVIN, i, step)
        out[i, 0] = x[i, 0] + normal_at(key, 0)
        out[i, 1] = x[i, 1] + normal_at(key, 1)
    return out


def _uniform_ref(key: int, j: int) -> float:
    word = reference.mix64_reference(key + (j + 1) * reference.GOLDEN)
    return (word >> 11) * 2.0**-53


def _normal_ref(key: int, k: int) -> float:
    radius = math.sqrt(-2.0 * math.log1p(-_uniform_ref(key, 2 * k)))
    return radius * math.cos((2 * math.pi) * _uniform_ref(key, 2 * k + 1))


def test_purposes_are_descent_randoms():
    assert PURPOSE == reference.PURPOSES
    named = {
        "langevin": PURPOSE_LANGEVIN,
        "grad_noise": PURPOSE_GRAD_NOISE,
        "batch": PURPOSE_BATCH,
        "shuffle": PURPOSE_SHUFFLE,
        "starts": PURPOSE_STARTS,
    }
    assert named == reference.PURPOSES


def test_mix64_equals_reference():
    rng = np.random.default_rng(0)
    edges = [0, 1, 2, 2**30, 2**31 - 1, 2**32, 2**53, 2**63 - 1, 2**63, 2**63 + 1, 2**64 - 2, 2**64 - 1]
    values = edges + [int(v) for v in rng.integers(0, 2**64 - 1, 500, dtype=np.uint64, endpoint=True)]
    got = _mix_all(np.array(values, np.uint64))
    assert [int(v) for v in got] == [reference.mix64_reference(v) for v in values]
    as_int64 = np.array(values, np.uint64).view(np.int64)
    assert np.array_equal(got.view(np.int64), reference.mix64(torch.from_numpy(as_int64)).numpy())


def test_keys_uniforms_and_normals_equal_descent_random():
    particles = torch.from_numpy(PARTICLES)
    worst = 0.0
    for seed in SEEDS:
        for name, purpose in reference.PURPOSES.items():
            for step in STEPS:
                keys, u, z = _draw(as_uint64(seed), purpose, PARTICLES, as_uint64(step), COUNT)
                where = f"seed={seed} purpose={name} step={step}"
                torch_keys = reference.counter_key(seed, name, particles, step).numpy()
                assert np.array_equal(keys.view(np.int64), torch_keys), where
                assert [int(k) for k in keys] == [
                    reference.counter_key_reference(seed, purpose, int(p), step) for p in PARTICLES
                ], where
                torch_u = reference.uniform(seed, name, particles, step, 2 * COUNT).numpy()
                assert np.array_equal(u, torch_u), where
                python_z = [[_normal_ref(int(key), k) for k in range(COUNT)] for key in keys]
                assert np.array_equal(z, np.array(python_z)), where
                torch_z = reference.normal(seed, name, particles, step, COUNT).numpy()
                worst = max(worst, float(np.max(np.abs(z - torch_z) / np.spacing(np.abs(z)))))
    assert worst <= 4.0, f"normals differ from torch's by {worst} ULP"


def test_far_down_the_stream():
    """Indices j past what a step draws, up to 2^62: (j + 1) * GOLDEN and 2j wrap modulo 2^64."""
    index = [0, 1, 2, 1000, 2**31, 2**32 + 3, 2**53, 2**61 + 7, 2**62 - 1, 2**62]
    for seed, particle, step in [(0, 0, 0), (2**63, 5, 2**63 - 1), (2**64 - 1, 2**63 - 1, 2**64 - 1)]:
        key = reference.counter_key_reference(seed, "grad_noise", particle, step)
        words, u, z = _far(as_uint64(key), np.array(index, np.uint64))
        assert [int(w) for w in words] == [
            reference.mix64_reference(key + (j + 1) * reference.GOLDEN) for j in index
        ]
        assert u.tolist() == [_uniform_ref(key, j) for j in index]
        assert z.tolist() == [_normal_ref(key, j) for j in index]


def test_noise_is_not_fused_into_the_callers_arithmetic():
    """A kernel compiled with fastmath={"contract"} adds the rounded draw: x + n, no FMA."""
    x = np.random.default_rng(1).standard_normal((4000, 2))
    seed, step = as_uint64(2**63 + 11), as_uint64(42)
    got = _langevin_like(x, seed, step)
    _, _, z = _draw(seed, PURPOSE_LANGEVIN, np.arange(x.shape[0], dtype=np.int64), step, x.shape[1])
    assert np.array_equal(got, x + z)
