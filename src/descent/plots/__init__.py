"""Figure builders shared by the CLI, the report, the Arena and notebooks."""

from descent.plots.static import landscape_grid, trajectory_figure

__all__ = ["landscape_grid", "trajectory_figure"]
