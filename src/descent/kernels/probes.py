"""The built-in probes of a kernel run, from the kernel's own states.

At every step a probe is due, and at the step before it, ``advance`` copies the block's state (its
hot rows: x, g, u, the rule's state, U, the stop step) into ``snapshots``; here each due step k
becomes the same :class:`~descent.dynamics.probes.StepView` the torch engine builds after step k,
and the probes record it through the torch engine's own :class:`_ProbeRecords`:

    x, value, grad, state         the snapshot of step k (a particle that stopped keeps its state)
    update                        u_k for the particles that moved at step k (active before it and
                                  not diverged at it), 0 for the rest
    x_before, state_before        the snapshot of step k - 1
    grad_used                     the transforms applied to g_{k-1} (with step k - 1's draws)
    hp                            the hyper-parameters of step k - 1 (the scheduled lr)

so a probe sees what it sees on the torch backend, up to the kernel's rounding.
"""

from __future__ import annotations

import numpy as np
import torch

from descent.dynamics.probes import StepView
from descent.random import Draw, stream_ids

#: the kernel's rows of each rule's state, by the torch rule's state names (``descent.optim.rules``)
STATE_ROWS = {
    "momentum": {"velocity": "M"},
    "nesterov": {"buffer": "M"},
    "adagrad": {"sum": "V"},
    "rmsprop": {"square_avg": "V"},
    "rmsprop-centered": {"square_avg": "V", "grad_avg": "M"},
    "rmsprop-momentum": {"square_avg": "V", "buffer": "Q"},
    "rmsprop-centered-momentum": {"square_avg": "V", "grad_avg": "M", "buffer": "Q"},
    "adam": {"exp_avg": "M", "exp_avg_sq": "V"},
    "adamw": {"exp_avg": "M", "exp_avg_sq": "V"},
    "amsgrad": {"exp_avg": "M", "exp_avg_sq": "V", "max_exp_avg_sq": "A"},
}


def snapshot_steps(probes, steps: int) -> list[int]:
    """The steps whose state the probes need: each due step k <= ``steps`` and the step before it."""
    due = sorted({k for p in probes for k in range(0, steps + 1, p.every)})
    return sorted(set(due) | {k - 1 for k in due if k > 0})


def record_probes(records, optimizer, rule: str, rows: dict, snapshots: np.ndarray, taken: list[int],
                  done: int, diverged: torch.Tensor, seed: int,
                  streams: str = "particle") -> None:  # fmt: skip
    """Feed ``records`` (the engine's ``_ProbeRecords``) the view of every due step up to ``done``.

    ``snapshots[q]`` is the state ``[rows, N]`` after step ``taken[q]``; ``diverged`` the step each
    particle diverged at (-1: never); ``streams`` as ``simulate``'s (the draws each step replays)."""
    n, dim = snapshots.shape[2], sum(1 for name in rows if name.startswith("X"))
    index = {k: q for q, k in enumerate(taken)}
    # every quantity over all snapshots at once ([Q, N, d] or [Q, N]); a step reads views of them
    letters = {"X", "G", "U", *STATE_ROWS.get(rule, {}).values()}
    picked = {a: snapshots[:, [rows[f"{a}{j}"] for j in range(dim)]] for a in letters}
    coordinates = {a: torch.from_numpy(np.ascontiguousarray(v.transpose(0, 2, 1))) for a, v in picked.items()}
    loss, stop = (torch.from_numpy(snapshots[:, rows[name]].copy()) for name in ("E", "STOP"))
    opt = optimizer.on(coordinates["X"][0])
    zeros = opt.rule.init(coordinates["X"][0])  # the state keys the rule does not use stay zero
    counts = torch.arange(len(taken) and max(taken) + 1, dtype=torch.int64)
    ids = stream_ids(n, streams)

    def rule_state(q: int, k: int) -> dict:
        state = {**zeros, "step": counts[k]}
        state.update({key: coordinates[letter][q] for key, letter in STATE_ROWS.get(rule, {}).items()})
        return state

    for k in range(done + 1):
        if not records.due(k):
            continue
        q = index[k]
        x, value, grad = coordinates["X"][q], loss[q], coordinates["G"][q]
        if k == 0:
            view = StepView(0, x, value, grad, torch.zeros_like(x), rule_state(q, 0), opt, active=stop[q] < 0)
            records.add(view)
            continue
        before = index[k - 1]
        x_before, grad_before = coordinates["X"][before], coordinates["G"][before]
        moving = stop[before] < 0
        moved = moving & (diverged != k)
        update = torch.where(moved.unsqueeze(1), coordinates["U"][q], 0.0)
        draw = Draw(seed, ids, k - 1, x.dtype) if opt.needs_draw else None
        grad_used = opt.process_gradient(grad_before, x_before, draw) if opt.transforms else grad_before
        view = StepView(
            k, x, value, grad, update, rule_state(q, k), opt, opt.hp_at(k - 1), x_before, grad_used,
            rule_state(before, k - 1), draw, moving,
        )  # fmt: skip
        records.add(view)
