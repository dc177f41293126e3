"""The counter-based stream: exact integers against a pure-Python reference, the right distributions,
and draws that depend only on (seed, purpose, particle, step)."""

import math
import random

import pytest
import torch

from descent.random import (
    MASK64,
    counter_key,
    counter_key_reference,
    integers,
    mix64,
    mix64_reference,
    normal,
    permutation,
    uniform,
)

torch.set_num_threads(1)


def test_mix64_equals_the_python_reference_on_the_whole_64_bit_range():
    rng = random.Random(0)
    values = [0, 1, 2**63 - 1, 2**63, 2**64 - 1] + [rng.getrandbits(64) for _ in range(2000)]
    signed = torch.tensor([v - 2**64 if v >= 2**63 else v for v in values], dtype=torch.int64)
    got = [v & MASK64 for v in mix64(signed).tolist()]
    assert got == [mix64_reference(v) for v in values]


def test_counter_keys_equal_the_reference_for_any_seed_particle_and_step():
    particles = torch.tensor([0, 1, 7, 123456, 2**40], dtype=torch.int64)
    for seed, purpose, step in [(0, "langevin", 0), (2**31 - 1, "batch", 99999), (5, "grad_noise", 3)]:
        keys = counter_key(seed, purpose, particles, step)
        expected = [counter_key_reference(seed, purpose, int(p), step) for p in particles]
        assert [k & MASK64 for k in keys.tolist()] == expected


def test_a_particles_draws_do_not_depend_on_the_other_particles():
    everyone = normal(3, "langevin", torch.arange(100), step=17, count=5)
    alone = normal(3, "langevin", torch.tensor([42]), step=17, count=5)
    assert torch.equal(everyone[42], alone[0])
    shuffled = torch.randperm(100, generator=torch.Generator().manual_seed(0))
    assert torch.equal(normal(3, "langevin", shuffled, step=17, count=5), everyone[shuffled])


def test_purposes_steps_and_seeds_give_different_streams():
    ids = torch.arange(50)
    base = uniform(1, "langevin", ids, 0, 4)
    for other in (
        uniform(1, "grad_noise", ids, 0, 4),
        uniform(1, "langevin", ids, 1, 4),
        uniform(2, "langevin", ids, 0, 4),
    ):
        assert not torch.equal(base, other)


def test_uniforms_are_uniform_in_zero_one():
    """Kolmogorov-Smirnov on 200,000 draws: D below its 0.1 % critical value 1.95 / sqrt(n)."""
    u = uniform(0, "starts", torch.arange(100_000), 0, 2).reshape(-1).sort().values
    n = u.numel()
    assert float(u.min()) >= 0 and float(u.max()) < 1
    cdf = torch.arange(1, n + 1, dtype=torch.float64) / n
    d = float(torch.maximum((cdf - u).abs(), (u - (cdf - 1 / n)).abs()).max())
    assert d < 1.95 / math.sqrt(n)


def test_normals_have_mean_zero_variance_one_and_gaussian_tails():
    """400,000 draws: mean within 4 SE (1/sqrt n), variance within 4 SE (sqrt(2/n)), kurtosis 3 within
    4 SE (sqrt(24/n)), and the share beyond 3 sigma (0.27 %) within 4 binomial SE."""
    z = normal(7, "langevin", torch.arange(200_000), 5, 2).reshape(-1)
    n = z.numel()
    assert abs(float(z.mean())) < 4 / math.sqrt(n)
    assert abs(float(z.var()) - 1) < 4 * math.sqrt(2 / n)
    assert abs(float((z**4).mean()) - 3) < 4 * math.sqrt(96 / n)
    tail = float((z.abs() > 3).double().mean())
    p = math.erfc(3 / math.sqrt(2))
    assert abs(tail - p) < 4 * math.sqrt(p * (1 - p) / n)


def test_integers_cover_their_range_evenly():
    """Chi-square over 10 bins of 100,000 draws below its 0.1 % critical value (27.9 at 9 dof)."""
    k = integers(0, "batch", torch.arange(10_000), 3, 10, high=10).reshape(-1)
    assert int(k.min()) == 0 and int(k.max()) == 9
    counts = torch.bincount(k, minlength=10).double()
    expected = k.numel() / 10
    assert float(((counts - expected) ** 2 / expected).sum()) < 27.9


@pytest.mark.parametrize("n", [1, 2, 10, 569])
def test_permutations_are_permutations(n):
    order = permutation(0, "shuffle", torch.arange(20), 4, n)
    assert torch.equal(order.sort(dim=1).values, torch.arange(n).expand(20, n))
