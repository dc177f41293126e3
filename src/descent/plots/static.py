"""Static matplotlib figures (the CLI's trajectory.png, the report)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from descent.dynamics import Trajectory  # noqa: E402
from descent.landscapes import Landscape  # noqa: E402

MARKERS = {
    "global_min": ("*", "gold"),
    "local_min": ("o", "white"),
    "saddle": ("X", "red"),
    "max": ("^", "k"),
}


def landscape_grid(landscape: Landscape, resolution: int = 200, bounds=None):
    """(xs, ys, U) on a grid over the first two coordinates (others at 0) of ``landscape``."""
    (x0, x1), (y0, y1) = bounds or landscape.bounds[:2]
    xs = torch.linspace(x0, x1, resolution, dtype=torch.float64)
    ys = torch.linspace(y0, y1, resolution, dtype=torch.float64)
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    points = torch.zeros(resolution * resolution, landscape.dim, dtype=torch.float64)
    points[:, 0] = gx.reshape(-1)
    if landscape.dim > 1:
        points[:, 1] = gy.reshape(-1)
    with torch.no_grad():  # in blocks: an objective with data holds [block, examples] at once
        values = torch.cat([landscape.value(block) for block in points.split(2048)])
    return xs.numpy(), ys.numpy(), values.reshape(resolution, resolution).numpy()


def draw_landscape(ax, landscape: Landscape, resolution: int = 200, bounds=None) -> None:
    """Filled contours of U (quantile-spaced levels so both deep and shallow parts show) and known points."""
    import numpy as np

    xs, ys, values = landscape_grid(landscape, resolution, bounds)
    defined = np.isfinite(values)
    finite = values[defined]
    with np.errstate(over="ignore", invalid="ignore"):  # values near the float limit
        levels = np.unique(np.quantile(finite, np.linspace(0, 1, 30))) if finite.size else np.zeros(0)
    levels = levels[np.isfinite(levels)]
    scale = float(np.abs(levels).max()) if levels.size else 1.0
    if scale > 1e300:  # near the float limit matplotlib's colour scale overflows: draw U / scale
        values, levels = values / scale, np.unique(levels / scale)
    if levels.size >= 2:
        ax.contourf(xs, ys, values, levels=levels, cmap="viridis")
        ax.contour(xs, ys, values, levels=levels, colors="k", linewidths=0.3, alpha=0.4)
    else:
        _draw_flat(ax, xs, ys, defined, finite)
    for point in landscape.critical_points:
        marker, color = MARKERS[point.kind]
        ax.plot(
            point.position[0],
            point.position[1] if landscape.dim > 1 else 0.0,
            marker,
            color=color,
            markeredgecolor="k",
            markersize=11,
            label=f"{point.id} ({point.kind})",
        )
    ax.set_xlabel("x")
    ax.set_ylabel("y")


def _draw_flat(ax, xs, ys, defined, finite) -> None:
    """A landscape with one value (a constant formula; zero gradient everywhere) or none finite: one
    even band where U is finite, grey where it is not, and a note saying which."""
    import numpy as np

    ax.set_facecolor("0.85")  # where U is not finite
    if finite.size:
        ax.contourf(xs, ys, np.where(defined, 0.0, np.nan), levels=[-1.0, 1.0], cmap="viridis")
        where = "everywhere" if defined.all() else "wherever it is finite"
        note = f"flat: U = {float(finite[0]) + 0.0:.6g} {where} (zero gradient)"  # + 0.0: no -0
    else:
        note = "U is not finite anywhere in this box"
    ax.text(
        0.5,
        0.97,
        note,
        transform=ax.transAxes,
        ha="center",
        va="top",
        fontsize=9,
        bbox={"boxstyle": "round", "facecolor": "white", "alpha": 0.85},
    )
    ax.set_xlim(float(xs[0]), float(xs[-1]))
    ax.set_ylim(float(ys[0]), float(ys[-1]))


FEW_FRAMES = 20  # a run that kept at most this many frames has its losses drawn as dots on the lines
MAP_MAX_DIM = 2  # a map of U over two coordinates shows the whole landscape only up to two dimensions


def trajectory_figure(trajectory: Trajectory, max_paths: int = 50):
    """Contour of the landscape with the paths (start o, end x) and loss against step; for more than
    ``MAP_MAX_DIM`` dimensions the loss against step alone (a 2-D map would be a meaningless slice, and
    costly: no grid of U is evaluated), the figure says so."""
    landscape = trajectory.landscape
    n = trajectory.positions.shape[1]
    chosen = torch.unique(torch.linspace(0, n - 1, min(n, max_paths)).round().long()).tolist()
    outcome = ", ".join(f"{k}: {v}" for k, v in trajectory.summary()["outcomes"].items())
    title = f"{landscape.name} · {trajectory.optimizer.name} · {outcome}"
    if landscape.dim > MAP_MAX_DIM:
        fig, ax_loss = plt.subplots(1, 1, figsize=(9, 4.8))
        _draw_losses(ax_loss, trajectory, chosen)
        ax_loss.set_title(
            f"{title}\nloss against step only: no map of a {landscape.dim}-dimensional objective", fontsize=10
        )
        fig.tight_layout()
        return fig
    fig, (ax_map, ax_loss) = plt.subplots(1, 2, figsize=(12, 4.8), gridspec_kw={"width_ratios": [1.3, 1]})
    draw_landscape(ax_map, landscape)
    for i in chosen:
        path = trajectory.positions[:, i, :].numpy()
        ax_map.plot(path[:, 0], path[:, 1] if landscape.dim > 1 else 0 * path[:, 0], "-", color="w", lw=1.2)
        ax_map.plot(path[0, 0], path[0, 1] if landscape.dim > 1 else 0, "o", color="w", ms=4)
        ax_map.plot(path[-1, 0], path[-1, 1] if landscape.dim > 1 else 0, "x", color="r", ms=7)
    _draw_losses(ax_loss, trajectory, chosen)
    (x0, x1), (y0, y1) = landscape.bounds[:2]
    ax_map.set_xlim(x0, x1)
    ax_map.set_ylim(y0, y1)
    ax_map.set_title(title, fontsize=10)
    ax_loss.set_title("loss against step", fontsize=10)
    fig.tight_layout()
    return fig


def _draw_losses(ax, trajectory: Trajectory, chosen: list[int]) -> None:
    """The loss against step of the particles ``chosen`` (a dot at each kept frame when few are kept:
    a line between two frames is not what happened between them)."""
    steps = trajectory.steps.numpy()
    marker = "o" if len(steps) <= FEW_FRAMES else None
    for i in chosen:
        ax.plot(steps, trajectory.loss[:, i].numpy(), lw=1, marker=marker, ms=4)
    ax.set_xlabel("step")
    ax.set_ylabel("loss U(w)")
    ax.grid(alpha=0.3)
