"""A kernel run goes in chunks of steps (``advance(k0, k1)``): the chunks join without a seam, Ctrl-C
between chunks keeps the steps that finished, and a float32 kernel refuses step counts its float
step numbers cannot hold."""

import pytest
import torch

from descent._errors import DescentError
from descent.dynamics import Events, simulate
from descent.dynamics.save import SaveAt
from descent.kernels import backend
from descent.landscapes import get_landscape
from descent.optim import Optimizer

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def well():
    return get_landscape("double-well")


def swarm(land, n=40, seed=3):
    gen = torch.Generator().manual_seed(seed)
    return (torch.rand(n, 2, dtype=torch.float64, generator=gen) * 2 - 1) * torch.tensor([1.8, 1.2])


def test_chunks_join_without_a_seam(well, monkeypatch):
    """Chunks of 7 steps give the same frames, events and final state as one chunk, bit for bit: frames
    every 5, particles stopping as converged mid-chunk, and a first block of particles (256 starts
    near the right minimum) that stops entirely while the second block runs on."""
    n = 256 + 40
    right = torch.tensor(well.minima[-1].position, dtype=torch.float64)
    starts = torch.cat([right + 0.01 * swarm(well, 256, seed=4), swarm(well)])
    opt = Optimizer.build("momentum", lr=0.02, momentum=torch.linspace(0.5, 0.9, n, dtype=torch.float64))
    events = Events(grad_tol=1e-6, step_tol=1e-7, stop_on=("converged",))
    kw = dict(save=SaveAt(every=5), events=events, backend="kernel")
    whole = simulate(well, opt, starts, 200, **kw)
    monkeypatch.setattr(backend, "CHUNK_WORK", 7 * n)
    assert backend.chunks(200, n)[:2] == [(0, 7), (7, 14)]
    pieces = simulate(well, opt, starts, 200, **kw)
    assert bool((whole.stop_step[:256] >= 0).all()) and int(whole.stop_step[:256].max()) < 150
    assert 0 < int((whole.stop_step[256:] >= 0).sum()) < 40  # some stop mid-run, some run on
    assert torch.equal(whole.positions, pieces.positions) and torch.equal(whole.loss, pieces.loss)
    assert whole.steps.tolist() == pieces.steps.tolist() and whole.outcomes == pieces.outcomes
    assert torch.equal(whole.stop_step, pieces.stop_step) and torch.equal(whole.min_loss, pieces.min_loss)
    for name, steps in whole.events.items():
        assert torch.equal(steps, pieces.events[name]), name


def test_ctrl_c_keeps_the_finished_chunks(well, monkeypatch):
    opt = Optimizer.build("momentum", lr=0.01, momentum=0.9)
    monkeypatch.setattr(backend, "CHUNK_WORK", 50 * 40)
    full = simulate(well, opt, swarm(well), 300, save=SaveAt(every=10), backend="kernel")

    def interrupt_after_two(done, total):
        if done >= 100:
            raise KeyboardInterrupt

    cut = simulate(
        well, opt, swarm(well), 300, save=SaveAt(every=10), backend="kernel", progress=interrupt_after_two
    )
    assert cut.interrupted and cut.steps_run == 100
    assert cut.steps.tolist() == list(range(0, 101, 10))
    assert torch.equal(cut.positions, full.positions[:11])


def test_float32_step_counts_beyond_its_exact_integers_are_refused(well):
    opt = Optimizer.build("gd", lr=0.01)
    start = well.start().float()
    assert backend.too_long(2**24 - 1, torch.float32) is None
    assert "16777215" in backend.too_long(2**24, torch.float32)
    assert backend.too_long(2**24, torch.float64) is None
    with pytest.raises(DescentError, match="16777215"):
        simulate(well, opt, start, 2**24, backend="kernel")
