"""The static figures: any landscape draws, flat (a constant formula), near the float limit or
partly undefined, and a run on a constant landscape gives a figure."""

import warnings

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from descent import Optimizer, simulate
from descent.landscapes import Landscape, formula_landscape, parse_formula
from descent.plots import trajectory_figure
from descent.plots.static import draw_landscape


def _drawn(landscape: Landscape) -> list[str]:
    """Draw ``landscape`` with every warning an error; the texts written on the map."""
    fig, ax = plt.subplots()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            draw_landscape(ax, landscape, resolution=40)
            fig.canvas.draw()
        return [text.get_text() for text in ax.texts]
    finally:
        plt.close(fig)


@pytest.mark.parametrize(
    ("text", "note"),
    [
        ("e", "flat: U = 2.71828 everywhere (zero gradient)"),
        ("0*x", "flat: U = 0 everywhere (zero gradient)"),
        ("3 + 0*y", "flat: U = 3 everywhere (zero gradient)"),
        ("2**1000 + 0*x", "flat: U = 1.07151e+301 everywhere (zero gradient)"),  # was a traceback
        ("-2**1000 + 0*y", "flat: U = -1.07151e+301 everywhere (zero gradient)"),
        ("3 + 0*log(x)", "flat: U = 3 wherever it is finite (zero gradient)"),
    ],
)
def test_a_constant_landscape_draws_one_band_and_says_so(text, note):
    assert _drawn(formula_landscape(text)) == [note]


@pytest.mark.parametrize(
    "text", ["1e308*x", "min(1e308*x, 1e308)", "log(x) + y", "1/x", "exp(exp(exp(x)))", "1e-300*x"]
)
def test_landscapes_near_the_float_limit_or_partly_undefined_draw_without_warnings(text):
    assert _drawn(formula_landscape(text)) == []


def test_a_landscape_finite_nowhere_draws_grey_with_a_note():
    # formula_landscape refuses such a formula; a Landscape built by hand may still be drawn
    energy = parse_formula("log(-1 - x**2)")
    landscape = Landscape(name="nowhere", dim=2, energy=energy, bounds=((-1.0, 1.0), (-1.0, 1.0)))
    assert _drawn(landscape) == ["U is not finite anywhere in this box"]


@pytest.mark.parametrize("text", ["e", "0*x"])
def test_a_run_on_a_constant_landscape_stays_put_and_gives_a_figure(text, tmp_path):
    landscape = formula_landscape(text)
    starts = torch.tensor([[-1.0, 0.5], [2.0, -2.0]], dtype=torch.float64)
    trajectory = simulate(landscape, Optimizer.build("momentum", lr=0.1, momentum=0.9), starts, 20)
    assert torch.equal(trajectory.positions[-1], starts)  # zero gradient: nothing moves
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        figure = trajectory_figure(trajectory)
        figure.savefig(tmp_path / "run.png")
    plt.close(figure)
    assert (tmp_path / "run.png").stat().st_size > 1000


def _contours(figure) -> list:
    from matplotlib.contour import ContourSet

    return [artist for ax in figure.axes for artist in ax.get_children() if isinstance(artist, ContourSet)]


def test_a_many_dimensional_run_draws_its_losses_only_fast_and_says_so(monkeypatch):
    import time

    import descent.plots.static as static
    from descent.objectives import digits_mlp

    net = digits_mlp(width=4, depth=1, examples=60)  # 310 weights
    trajectory = simulate(net, Optimizer.build("gd", lr=0.3), net.inits([0, 1, 2]), 30)
    plane = simulate(formula_landscape("x**2 + y**2"), Optimizer.build("gd", lr=0.1), torch.ones(1, 2), 5)
    assert len(_contours(trajectory_figure(plane))) == 2  # two dimensions: the map (filled, and lines)

    def no_grid(*args, **kwargs):
        raise AssertionError("a 2-D grid of a many-dimensional objective was evaluated")

    monkeypatch.setattr(static, "landscape_grid", no_grid)
    start = time.perf_counter()
    figure = trajectory_figure(trajectory)
    figure.canvas.draw()
    seconds = time.perf_counter() - start
    try:
        assert seconds < 5.0 and not _contours(figure) and len(figure.axes) == 1
        assert f"no map of a {net.dim}-dimensional objective" in figure.axes[0].get_title()
        lines = figure.axes[0].get_lines()
        assert len(lines) == 3
        for i, line in enumerate(lines):
            assert np.array_equal(line.get_xdata(), trajectory.steps.numpy())
            assert np.array_equal(line.get_ydata(), trajectory.loss[:, i].numpy())
        assert figure.get_size_inches()[0] <= 12
    finally:
        plt.close("all")
