"""Counter-based random numbers: every draw is a pure function of (seed, purpose, particle, step, index).

A particle's Langevin noise, gradient noise and mini-batch indices therefore do not depend on which
other particles share the run, on the order the engine visits them, or on the backend: the same
stored spec replays exactly, and a later backend (Numba, Triton) reproduces the integer stream bit
for bit by implementing :func:`mix64` (SplitMix64's finaliser, Steele, Lea & Flood, OOPSLA 2014)
and :func:`counter_key`.

The stream, in unsigned 64-bit arithmetic (multiplication and addition wrap modulo 2^64)::

    key(seed, purpose, particle, step) = mix(mix(mix(mix(seed) ^ purpose) ^ particle) ^ step)
    bits(j)  = mix(key + (j + 1) * GOLDEN)                       j = 0, 1, 2, ...
    uniform  = (bits >> 11) * 2^-53                              in [0, 1), float64
    normal   = sqrt(-2 log(1 - u_{2j})) * cos(2 pi u_{2j+1})      Box-Muller, cosine branch only
    integer  = floor(uniform * high)                             in [0, high)

Normals are made in float64 and cast to the run's dtype. torch's int64 arithmetic wraps like
unsigned arithmetic; the logical right shift is an arithmetic shift masked to the low bits
(tested against a pure-Python reference).

>>> a = uniform(7, "langevin", torch.tensor([0, 5]), step=3, count=2)
>>> b = uniform(7, "langevin", torch.tensor([5]), step=3, count=2)
>>> torch.equal(a[1], b[0])
True
"""

from __future__ import annotations

import math

import torch

from descent._errors import invalid, listed

#: what a draw is for: separate streams that never collide
PURPOSES: dict[str, int] = {"langevin": 1, "grad_noise": 2, "batch": 3, "shuffle": 4, "starts": 5}

MASK64 = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15
MUL1 = 0xBF58476D1CE4E5B9
MUL2 = 0x94D049BB133111EB


def _signed(value: int) -> int:
    """An unsigned 64-bit constant as the int64 with the same bits."""
    value &= MASK64
    return value - (1 << 64) if value >= 1 << 63 else value


_GOLDEN, _MUL1, _MUL2 = _signed(GOLDEN), _signed(MUL1), _signed(MUL2)


def _shr(x: torch.Tensor, k: int) -> torch.Tensor:
    """Logical right shift of int64 bits (torch's >> is arithmetic: mask off the copied sign bits)."""
    return torch.bitwise_right_shift(x, k) & ((1 << (64 - k)) - 1)


def mix64(x: torch.Tensor) -> torch.Tensor:
    """SplitMix64's finaliser on int64 tensors:
    z ^= z >> 30; z *= MUL1; z ^= z >> 27; z *= MUL2; z ^= z >> 31."""
    x = (x ^ _shr(x, 30)) * _MUL1
    x = (x ^ _shr(x, 27)) * _MUL2
    return x ^ _shr(x, 31)


def mix64_reference(x: int) -> int:
    """:func:`mix64` on one Python integer (unsigned, modulo 2^64): the readable reference."""
    x &= MASK64
    x = ((x ^ (x >> 30)) * MUL1) & MASK64
    x = ((x ^ (x >> 27)) * MUL2) & MASK64
    return x ^ (x >> 31)


def _purpose(purpose: str | int) -> int:
    if isinstance(purpose, int):
        return purpose
    if purpose not in PURPOSES:
        raise invalid("purpose", purpose, f"one of: {listed(sorted(PURPOSES))}")
    return PURPOSES[purpose]


def counter_key(
    seed: int, purpose: str | int, particle: torch.Tensor, step: int | torch.Tensor
) -> torch.Tensor:
    """The int64 key ``[N]`` of each particle's draws at ``step`` (``particle``: int64 ids ``[N]``)."""
    particle = particle.to(torch.int64)
    head = mix64_reference(mix64_reference(int(seed)) ^ _purpose(purpose))
    key = mix64(particle ^ _signed(head))
    if isinstance(step, int):
        return mix64(key ^ _signed(step))  # a Python scalar: no host-to-device copy on CUDA
    return mix64(key ^ step.to(device=particle.device, dtype=torch.int64))


def counter_key_reference(seed: int, purpose: str | int, particle: int, step: int) -> int:
    """:func:`counter_key` for one particle, in Python integers."""
    key = mix64_reference(mix64_reference(int(seed)) ^ _purpose(purpose))
    key = mix64_reference(key ^ (particle & MASK64))
    return mix64_reference(key ^ (step & MASK64))


def random_bits(key: torch.Tensor, count: int) -> torch.Tensor:
    """``count`` int64 words per key: ``[N] -> [N, count]``."""
    j = torch.arange(1, count + 1, dtype=torch.int64, device=key.device)
    return mix64(key.unsqueeze(1) + j * _GOLDEN)


def _unit(bits: torch.Tensor) -> torch.Tensor:
    return _shr(bits, 11).to(torch.float64) * (2.0**-53)


Step = int | torch.Tensor


def _uniforms(seed: int, purpose: str | int, particle: torch.Tensor, step: Step, count: int) -> torch.Tensor:
    """``count`` float64 uniforms in [0, 1) per particle: ``[N, count]``."""
    return _unit(random_bits(counter_key(seed, purpose, particle, step), count))


def uniform(seed, purpose, particle, step: Step, count: int, dtype=torch.float64) -> torch.Tensor:
    """Uniform numbers in [0, 1), ``[N, count]``, made in float64 and cast to ``dtype``."""
    return _uniforms(seed, purpose, particle, step, count).to(dtype)


def normal(seed, purpose, particle, step: Step, count: int, dtype=torch.float64) -> torch.Tensor:
    """Standard normal numbers ``[N, count]`` by Box-Muller (two uniforms per number)."""
    u = _uniforms(seed, purpose, particle, step, 2 * count)
    radius = torch.sqrt(-2.0 * torch.log1p(-u[:, 0::2]))
    return (radius * torch.cos((2 * math.pi) * u[:, 1::2])).to(dtype)


def integers(seed, purpose, particle, step: Step, count: int, high: int) -> torch.Tensor:
    """Integers in [0, high), ``[N, count]`` (int64): floor(u * high)."""
    u = _uniforms(seed, purpose, particle, step, count)
    return torch.clamp((u * high).to(torch.int64), max=high - 1)


def permutation(seed: int, purpose: str | int, particle: torch.Tensor, step: Step, n: int) -> torch.Tensor:
    """A random permutation of ``range(n)`` per particle, ``[N, n]``: the order of n uniform keys
    (ties broken by index, stable sort)."""
    keys = random_bits(counter_key(seed, purpose, particle, step), n)
    return torch.sort(keys, dim=1, stable=True).indices


#: which stream particle i draws from: ``"particle"`` its own (keyed by i), ``"shared"`` particle 0's
STREAMS = ("particle", "shared")


def stream_ids(n: int, streams: str, device: torch.device | str = "cpu") -> torch.Tensor:
    """The stream ids ``[n]`` of ``n`` particles: ``arange(n)``, or zeros when ``streams`` is shared."""
    if streams == "shared":
        return torch.zeros(n, dtype=torch.int64, device=device)
    return torch.arange(n, dtype=torch.int64, device=device)


class Draw:
    """The draws of one step for a set of particles: ``draw.normal("langevin", d) -> [N, d]``.

    The engine makes one per step; the reference loop one per (particle, step); both give each
    particle the same numbers.
    """

    def __init__(self, seed: int, particle: torch.Tensor, step: Step, dtype: torch.dtype) -> None:
        self.seed, self.particle, self.dtype = int(seed), particle, dtype
        self.step = step if isinstance(step, torch.Tensor) else int(step)

    @classmethod
    def stacked(cls, draws: list[Draw]) -> Draw:
        """The draws of several steps as one set of particles (a step per row): what each step drew."""
        particle = torch.cat([d.particle for d in draws])
        # each draw is one step's: its step an int (or a tensor holding one number)
        step = torch.cat([torch.full_like(d.particle, int(d.step)) for d in draws])
        return cls(draws[0].seed, particle, step, draws[0].dtype)

    def normal(self, purpose: str, count: int) -> torch.Tensor:
        return normal(self.seed, purpose, self.particle, self.step, count, self.dtype)

    def subset(self, index: torch.Tensor) -> Draw:
        """The same step's draws for the particles at positions ``index`` of this set."""
        return Draw(self.seed, self.particle[index], self.step, self.dtype)
