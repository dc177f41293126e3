"""sgd-noise's instrument: the mini-batch gradients it measures are the risk's own gradients on the
batches the engine draws (``draw_indices``), checked exactly against `EmpiricalRisk.value_and_grad`."""

import torch

from descent.dynamics.batches import draw_indices
from descent.experiments import sgd_noise as sn
from descent.objectives import logistic_risk

torch.set_num_threads(1)
W = torch.tensor([-3.0, -0.5], dtype=torch.float64)


def test_per_example_gradients_are_the_risks_on_one_example_batches():
    risk = logistic_risk()
    n = risk.features.shape[0]
    mine = sn.per_example_gradients(risk, W)
    _, theirs = risk.value_and_grad(W.expand(n, -1), torch.arange(n).unsqueeze(1))
    assert mine.shape == (n, 2)
    assert torch.allclose(mine, theirs, rtol=1e-12, atol=1e-15)


def test_batch_gradients_are_the_risks_own_on_the_engines_batches():
    risk = logistic_risk()
    per = sn.per_example_gradients(risk, W)
    for replacement, mode in ((True, "replacement"), (False, "without")):
        mine = sn.batch_gradients(per, 16, replacement, 50, seed=3, first=7)
        indices = draw_indices(3, mode, 16, 569, torch.arange(7, 57), 0)
        _, theirs = risk.value_and_grad(W.expand(50, -1), indices)
        assert torch.allclose(mine, theirs, rtol=1e-12, atol=1e-15)
