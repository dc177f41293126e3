"""The physics monitor for a user's own PyTorch training loop: two lines,

    monitor = descent.watch(model, optimizer, loss_fn=criterion, held=(x_held, y_held), every=50)
    ...  # in the loop, after optimizer.step():
    monitor.step(loss)

then ``monitor.rows`` (one dict per check), ``monitor.diagnosis`` (the latest verdict with advice in
numbers), ``monitor.line`` (the live summary), ``monitor.report(folder)`` (CSV, JSON, figure, report).
Modules: `physics` (the optimizer as a heavy ball in a metric), `measure` (the held batch),
`diagnosis` (the rules and thresholds), `report` (outputs), `monitor` (the loop's side).
"""

from descent.monitor.diagnosis import Diagnosis, Thresholds, diagnose
from descent.monitor.monitor import COLUMNS, Monitor, watch

__all__ = ["COLUMNS", "Diagnosis", "Monitor", "Thresholds", "diagnose", "watch"]
