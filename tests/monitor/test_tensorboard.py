"""The monitor's TensorBoard log (the ``monitor`` extra, installed by ``dev``): a real SummaryWriter's
event files, read back by TensorBoard's own reader, hold every finite number of each check at its
step (to float32, TensorBoard's precision) and nothing else; ``close`` stops the writer; without the
package, ``tensorboard=`` fails with one line before any work."""

from __future__ import annotations

import math
import sys
import threading

import numpy as np
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch import nn

import descent
from descent._errors import DescentError
from tests.monitor.test_watch import X, Y, _loop  # the same data and full-batch loop

torch.set_num_threads(1)


def _watched(folder, every: int = 2):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 3))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    monitor = descent.watch(
        model,
        optimizer,
        nn.CrossEntropyLoss(),
        (X[:12], Y[:12]),
        every=every,
        verbose=False,
        tensorboard=folder,
    )
    return model, optimizer, monitor


def _read(folder) -> dict[str, list[tuple[int, float]]]:
    """Every scalar in the folder's event files, by tag: (step, value) in the order written."""
    reader = EventAccumulator(str(folder), size_guidance={"scalars": 0})  # 0: keep every event
    reader.Reload()
    return {tag: [(e.step, e.value) for e in reader.Scalars(tag)] for tag in reader.Tags()["scalars"]}


def test_event_files_hold_every_finite_number_of_each_check(tmp_path):
    model, optimizer, monitor = _watched(tmp_path)
    _loop(model, optimizer, monitor, 6)
    monitor.close()
    expected: dict[str, list[tuple[int, float]]] = {}
    for row in monitor.rows:
        for key, value in row.items():
            if key != "step" and isinstance(value, (int, float)) and math.isfinite(value):
                expected.setdefault(f"monitor/{key}", []).append((row["step"], float(np.float32(value))))
    # the run has both kinds of column: a number at every check, and one that is NaN here (plain SGD
    # has no velocity, hence no kinetic energy)
    assert {"monitor/temperature", "monitor/sharpness", "monitor/edge", "monitor/loss"} <= set(expected)
    assert all(math.isnan(row["kinetic_energy"]) for row in monitor.rows)

    written = _read(tmp_path)
    assert [row["step"] for row in monitor.rows] == [2, 4, 6]
    assert written == expected  # same tags, steps and float32 values; no NaN column, no "step" tag
    assert all(math.isfinite(value) for events in written.values() for _, value in events)


def _of_tensorboard(thread: threading.Thread) -> bool:
    return type(thread).__module__.split(".")[0] == "tensorboard"


def test_close_stops_the_writer(tmp_path):
    before = set(threading.enumerate())
    model, optimizer, monitor = _watched(tmp_path, every=3)
    started = [t for t in threading.enumerate() if t not in before and _of_tensorboard(t)]
    assert started and all(t.is_alive() for t in started)  # the writer's background thread
    _loop(model, optimizer, monitor, 3)
    monitor.close()
    assert not any(t.is_alive() for t in started)
    assert not model._forward_pre_hooks
    assert _read(tmp_path)["monitor/loss"] == [(3, float(np.float32(monitor.rows[0]["loss"])))]
    monitor.close()  # twice is harmless


def test_without_the_package_is_one_clear_line(monkeypatch, tmp_path):
    """The package made unimportable (None in sys.modules), as if it were not installed."""
    monkeypatch.setitem(sys.modules, "tensorboard", None)
    monkeypatch.delitem(sys.modules, "torch.utils.tensorboard", raising=False)
    model = nn.Linear(5, 3)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(DescentError, match=r"^tensorboard is not installed: pip install ") as error:
        descent.watch(model, optimizer, nn.CrossEntropyLoss(), (X[:12], Y[:12]), tensorboard=tmp_path)
    assert "\n" not in str(error.value)
    assert not model._forward_pre_hooks and not any(tmp_path.iterdir())  # no work done


def test_the_writer_is_flushed_at_each_check(tmp_path):
    """A TensorBoard running beside the loop sees each check at once, not after the writer's flush_secs
    (a local file is written straight away; TensorFlow's and remote file systems buffer until a flush)."""
    model, optimizer, monitor = _watched(tmp_path, every=3)
    flushes = []
    flush = monitor.writer.flush
    monitor.writer.flush = lambda: flushes.append(monitor.steps) or flush()
    _loop(model, optimizer, monitor, 7)
    assert flushes == [3, 6]
    assert _read(tmp_path)["monitor/loss"] == [
        (row["step"], pytest.approx(row["loss"], rel=1e-6)) for row in monitor.rows
    ]
    monitor.close()
