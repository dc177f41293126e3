"""Loss slices of real networks against direct evaluation of the model, the PCA plane against numpy's
SVD, the tabulated landscape's interpolant against its table, finite differences and autograd, its
cache, and a run on it through the engine."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch

from descent._errors import DescentError
from descent.landscapes import network_slice
from descent.landscapes.network_slice import Bicubic
from descent.train.models import build_model, set_flat_parameters
from descent.train.slices import (
    cross_entropy,
    evaluate,
    evaluate_reference,
    filter_normalized_direction,
    flatten,
    path_on_plane,
    pca_plane,
    plane_slice,
    slice_1d,
    slice_2d,
    slice_figure,
)

torch.set_num_threads(1)
F64 = torch.float64
CE = torch.nn.functional.cross_entropy


def small_data(n: int = 60, features: int = 64, classes: int = 10, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n, features, generator=generator, dtype=F64)
    return x, torch.arange(n) % classes


def loss_at(model: torch.nn.Module, vector: torch.Tensor, data) -> tuple[float, float]:
    """The loss and accuracy of a copy of ``model`` holding the flat weights ``vector`` (plain torch)."""
    other = copy.deepcopy(model)
    set_flat_parameters(other, vector.to(F64))
    with torch.no_grad():
        out = other(data[0])
    return float(CE(out, data[1])), float((out.argmax(1) == data[1]).double().mean())


# --- filter normalisation ----------------------------------------------------------------------------
@pytest.mark.parametrize("spec", ["mlp:12,8", "cnn"])
def test_each_filter_of_a_direction_has_the_norm_of_the_weights_filter_and_biases_are_zero(spec):
    model = build_model(spec, 64, 10, seed=3)
    direction = filter_normalized_direction(model, seed=5)
    for name, w in model.named_parameters():
        d = direction[name]
        assert d.shape == w.shape and d.dtype == w.dtype
        if w.ndim <= 1:
            assert bool((d == 0).all()), name
            continue
        for j in range(w.shape[0]):  # one filter at a time: a row, or an output channel
            assert float(d[j].norm()) == pytest.approx(float(w[j].detach().norm()), rel=1e-9), (name, j)
        assert not torch.allclose(d, w)  # a random direction, not the weights
    kept = filter_normalized_direction(model, seed=5, ignore_biases=False)
    for name, w in model.named_parameters():
        if w.ndim <= 1:
            assert torch.equal(kept[name], w.detach())
    again = filter_normalized_direction(model, seed=5)
    assert all(torch.equal(again[k], direction[k]) for k in direction)
    other = filter_normalized_direction(model, seed=6)
    first = next(iter(direction))
    assert not torch.equal(other[first], direction[first])


def test_bad_arguments_are_refused_in_the_package_format():
    model = build_model("mlp:4", 64, 10)
    with pytest.raises(DescentError, match="invalid seed="):
        filter_normalized_direction(model, seed=1.5)  # type: ignore[arg-type]
    d = filter_normalized_direction(model, seed=0)
    with pytest.raises(DescentError, match="invalid chunk="):
        slice_1d(model, CE, small_data(), d, [0.0], chunk=0)
    with pytest.raises(DescentError, match="invalid dtype="):
        slice_1d(model, CE, small_data(), d, [0.0], dtype=torch.float16)
    with pytest.raises(DescentError, match="invalid trajectory="):
        pca_plane(torch.zeros(2, 5, dtype=F64))


# --- slices against the model itself -----------------------------------------------------------------
def test_cross_entropy_equals_torchs():
    out = torch.randn(50, 10, dtype=F64, generator=torch.Generator().manual_seed(1)) * 5
    y = torch.arange(50) % 10
    torch.testing.assert_close(cross_entropy(out, y), CE(out, y), rtol=1e-14, atol=0)


@pytest.mark.parametrize("spec", ["mlp:16", "cnn"])
def test_a_1d_slice_at_alpha_zero_is_the_models_loss(spec):
    model, data = build_model(spec, 64, 10, seed=1), small_data()
    d = filter_normalized_direction(model, seed=2)
    line = slice_1d(model, CE, data, d, torch.linspace(-1, 1, 9))
    with torch.no_grad():
        out = model(data[0])
    assert float(line.loss[4]) == pytest.approx(float(CE(out, data[1])), rel=1e-12)
    assert float(line.accuracy[4]) == pytest.approx(float((out.argmax(1) == data[1]).double().mean()))
    assert line.loss.shape == line.accuracy.shape == (9,)


@pytest.mark.parametrize("spec", ["mlp:16,8", "cnn"])  # the MLP takes evaluate's fast path, the cnn not
def test_2d_slice_values_equal_the_model_evaluated_at_those_weights(spec):
    model, data = build_model(spec, 64, 10, activation="tanh", seed=4), small_data()
    d1, d2 = filter_normalized_direction(model, 7), filter_normalized_direction(model, 8, ignore_biases=False)
    alphas, betas = torch.linspace(-1, 1, 5), torch.linspace(-0.5, 1.5, 4)
    surface = slice_2d(model, CE, data, d1, d2, alphas, betas, chunk=3)
    w0, v1, v2 = flatten(dict(model.named_parameters())).detach(), flatten(d1), flatten(d2)
    for i, j in [(0, 0), (2, 1), (4, 3), (1, 2)]:
        loss, accuracy = loss_at(model, w0 + alphas[i] * v1 + betas[j] * v2, data)
        assert float(surface.loss[i, j]) == pytest.approx(loss, rel=1e-12)
        assert float(surface.accuracy[i, j]) == pytest.approx(accuracy)
    single = slice_2d(model, CE, data, d1, d2, alphas, betas, dtype=torch.float32)
    assert single.loss.dtype == torch.float32
    torch.testing.assert_close(single.loss.double(), surface.loss, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("spec", ["mlp:6,5", "cnn"])
def test_the_batched_evaluation_equals_the_readable_reference(spec):
    model, data = build_model(spec, 64, 10, seed=9), small_data(30)
    directions = [filter_normalized_direction(model, s, ignore_biases=s == 2) for s in (1, 2, 3)]
    coefficients = torch.randn(11, 3, dtype=F64, generator=torch.Generator().manual_seed(0))
    fast = evaluate(model, CE, data, directions, coefficients, chunk=4)
    slow = evaluate_reference(model, CE, data, directions, coefficients)
    torch.testing.assert_close(fast[0], slow[0], rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(fast[1], slow[1], rtol=0, atol=0)


# --- the PCA plane ------------------------------------------------------------------------------------
def test_the_pca_plane_is_numpys_svd_of_the_centred_iterates_relative_to_the_last():
    generator = torch.Generator().manual_seed(3)
    steps = torch.linspace(0, 1, 40, dtype=F64).unsqueeze(1)
    trajectory = (
        steps * torch.randn(1, 30, dtype=F64, generator=generator)
        + steps**2 * torch.randn(1, 30, dtype=F64, generator=generator)
        + 0.01 * torch.randn(40, 30, dtype=F64, generator=generator)
    )
    plane = pca_plane(trajectory)
    diffs = (trajectory - trajectory[-1]).numpy()
    _, singular, vh = np.linalg.svd(diffs - diffs.mean(axis=0), full_matrices=False)
    for k in range(2):
        assert abs(float(np.dot(plane.directions[k].numpy(), vh[k]))) == pytest.approx(1.0, abs=1e-10)
    np.testing.assert_allclose(plane.explained.numpy(), singular[:2] ** 2 / (singular**2).sum(), rtol=1e-10)
    np.testing.assert_allclose(plane.coordinates.numpy(), diffs @ plane.directions.numpy().T, atol=1e-12)
    assert bool((plane.coordinates[0] >= 0).all())  # the sign convention
    assert torch.equal(plane.coordinates[-1], torch.zeros(2, dtype=F64))
    assert float(plane.explained.sum()) > 0.99  # the path lies near a plane


def test_a_training_path_on_its_pca_plane_reports_the_true_and_the_plane_loss():
    model, data = build_model("mlp:8", 64, 10, activation="tanh", seed=0), small_data(80)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    iterates = [flatten(dict(model.named_parameters())).detach().clone()]
    for _ in range(30):
        optimizer.zero_grad()
        CE(model(data[0]), data[1]).backward()
        optimizer.step()
        iterates.append(flatten(dict(model.named_parameters())).detach().clone())
    trajectory = torch.stack(iterates)
    plane = pca_plane(trajectory)
    surface = plane_slice(model, CE, data, plane, torch.linspace(-8, 8, 33), torch.linspace(-8, 8, 33))
    path = path_on_plane(model, CE, data, trajectory, plane, surface=surface)
    for t in (0, 10, 30):
        assert float(path.true_loss[t]) == pytest.approx(loss_at(model, trajectory[t], data)[0], rel=1e-12)
        projected = plane.origin + path.coordinates[t] @ plane.directions
        assert float(path.plane_loss[t]) == pytest.approx(loss_at(model, projected, data)[0], rel=1e-12)
        assert float(path.off_plane[t]) == pytest.approx(float((trajectory[t] - projected).norm()), abs=1e-12)
    torch.testing.assert_close(path.gap, path.true_loss - path.plane_loss)
    assert float(path.gap[-1]) == 0.0 and float(path.off_plane[-1]) == 0.0
    assert float(path.true_loss[-1]) < float(path.true_loss[0])
    inside = path.coordinates.abs().max(dim=1).values < 8
    torch.testing.assert_close(path.grid_loss[inside], path.plane_loss[inside], rtol=0.05, atol=0.02)
    figure = slice_figure(surface, path)
    assert figure.get_size_inches()[0] <= 12
    import matplotlib.pyplot as plt

    plt.close(figure)


# --- the interpolant ----------------------------------------------------------------------------------
BOX = ((-1.0, 1.0), (-2.0, 0.5))


def quadratic(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return 1.5 * x**2 - 0.7 * x * y + 0.4 * y**2 + 0.3 * x - 0.2 * y + 1.0


def bicubic(resolution: tuple[int, int] = (21, 26), function=None) -> tuple[Bicubic, torch.Tensor]:
    xs = torch.linspace(*BOX[0], resolution[0], dtype=F64)
    ys = torch.linspace(*BOX[1], resolution[1], dtype=F64)
    gx, gy = torch.meshgrid(xs, ys, indexing="ij")
    function = function or (lambda x, y: torch.sin(3 * x) * torch.cos(2 * y) + x * y)
    return Bicubic(function(gx, gy), BOX, kappa=2.0), torch.stack([gx, gy], -1)


def test_the_interpolant_is_exact_at_the_nodes():
    interpolant, nodes = bicubic()
    value, _ = interpolant(nodes.reshape(-1, 2))
    torch.testing.assert_close(value, interpolant.table.reshape(-1), rtol=0, atol=1e-13)
    node = nodes[4, 7].clone()  # autograd's second derivatives exist at a node (u = 0) too
    hessian = torch.autograd.functional.hessian(lambda p: interpolant(p.unsqueeze(0))[0][0], node)
    assert bool(torch.isfinite(hessian).all()) and torch.allclose(hessian, hessian.T)


def test_the_interpolant_reproduces_a_quadratic_on_interior_cells():
    """Central differences are exact for a quadratic, so Catmull-Rom's patches are the quadratic."""
    interpolant, _ = bicubic(function=quadratic)
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(500, 2, dtype=F64, generator=generator) * torch.tensor([1.6, 2.0]) + torch.tensor(
        [-0.8, -1.8]
    )
    value, grad = interpolant(x)
    torch.testing.assert_close(value, quadratic(x[:, 0], x[:, 1]), rtol=1e-12, atol=1e-12)
    exact = torch.stack([3 * x[:, 0] - 0.7 * x[:, 1] + 0.3, -0.7 * x[:, 0] + 0.8 * x[:, 1] - 0.2], 1)
    torch.testing.assert_close(grad, exact, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("where", ["inside", "outside"])
def test_the_gradient_is_the_derivative_of_the_value(where):
    """Central finite differences and torch's autograd of the value, inside the box and beyond it."""
    interpolant, _ = bicubic()
    generator = torch.Generator().manual_seed(1)
    u = torch.rand(300, 2, dtype=F64, generator=generator)
    low, high = torch.tensor([b[0] for b in BOX]), torch.tensor([b[1] for b in BOX])
    x = low + (high - low) * (u if where == "inside" else 3 * u - 1)
    _, grad = interpolant(x)
    h = 1e-6
    for k in range(2):
        step = torch.zeros(2, dtype=F64)
        step[k] = h
        difference = (interpolant(x + step)[0] - interpolant(x - step)[0]) / (2 * h)
        torch.testing.assert_close(grad[:, k], difference, rtol=1e-5, atol=1e-6)
    xg = x.clone().requires_grad_(True)
    (auto,) = torch.autograd.grad(interpolant(xg)[0].sum(), xg)
    torch.testing.assert_close(grad, auto, rtol=1e-12, atol=1e-12)


def test_the_gradient_is_continuous_across_cells_and_the_box():
    interpolant, nodes = bicubic()
    edges = torch.cat([nodes[5, 3:20], nodes[0, 2:22], nodes[7:15, -1]])  # on cell lines and box sides
    for k in range(2):
        offset = torch.zeros(2, dtype=F64)
        offset[k] = 1e-9
        below, above = interpolant(edges - offset), interpolant(edges + offset)
        torch.testing.assert_close(below[1], above[1], rtol=0, atol=1e-6)
        torch.testing.assert_close(below[0], above[0], rtol=0, atol=1e-8)


def test_non_finite_and_far_positions_give_non_finite_or_large_values_not_errors():
    interpolant, _ = bicubic()
    x = torch.tensor([[float("nan"), 0.0], [1e200, 0.0], [-1e30, -1e30], [0.0, 0.0]], dtype=F64)
    value, grad = interpolant(x)
    assert math.isnan(float(value[0])) and math.isnan(float(grad[0, 0]))
    assert float(value[1]) > 1e300 and float(value[2]) > 1e50 and math.isfinite(float(value[3]))
    value32, _ = interpolant(x.float())
    assert value32.dtype == torch.float32


# --- the tabulated landscape: cache and engine --------------------------------------------------------
@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv(network_slice.CACHE_ENV, str(tmp_path))
    network_slice._cached.cache_clear()
    yield tmp_path
    network_slice._cached.cache_clear()


def test_the_table_is_built_once_in_the_cache_dir_and_read_back(cache, monkeypatch):
    first = network_slice.digits_slice(resolution=21)
    files = list(cache.glob("network-slice-*.npz"))
    assert len(files) == 1 and first.info["built"] and first.info["path"] == str(files[0])
    assert first.info["test_accuracy"] > 0.9 and first.info["train_loss"] < 0.05

    def refuse(recipe):
        raise AssertionError("trained again")

    monkeypatch.setattr(network_slice, "train_network", refuse)
    network_slice._cached.cache_clear()
    second = network_slice.digits_slice(resolution=21)
    assert not second.info["built"]
    torch.testing.assert_close(second.interpolant.table, first.interpolant.table, rtol=0, atol=0)
    trained = second.point("trained")
    assert max(abs(c) for c in trained.position) < 0.1  # the trained weights sit at the origin
    assert trained.value == pytest.approx(first.info["train_loss"], rel=0.05)
    x = torch.tensor([trained.position], dtype=F64)
    assert float(second.gradient(x).norm()) < 1e-9
    with pytest.raises(DescentError, match="digits-slice.resolution"):
        network_slice.digits_slice(resolution=4.5)


def test_a_damaged_cache_file_is_rebuilt_and_an_unwritable_cache_only_skips_keeping(cache, monkeypatch):
    path = network_slice.cache_path(network_slice.SliceRecipe(resolution=11))
    path.write_bytes(b"not an npz")
    land = network_slice.digits_slice(resolution=11)
    assert land.info["built"] and land.info["path"] == str(path)
    with np.load(path) as stored:
        np.testing.assert_array_equal(stored["table"], land.interpolant.table.numpy())
    blocked = cache / "a-file"
    blocked.write_text("")
    monkeypatch.setenv(network_slice.CACHE_ENV, str(blocked))  # a file where the folder should be
    network_slice._cached.cache_clear()
    again = network_slice.digits_slice(resolution=11)
    assert again.info["built"] and again.info["path"] is None
    torch.testing.assert_close(again.interpolant.table, land.interpolant.table, rtol=0, atol=0)


def test_the_table_is_the_networks_loss_on_the_slice(cache):
    """The cached table against the network rebuilt from the same recipe and evaluated directly."""
    land = network_slice.digits_slice(resolution=21)
    recipe = network_slice.SliceRecipe(resolution=21)
    model, data = network_slice.train_network(recipe)
    d1, d2 = (filter_normalized_direction(model, s) for s in recipe.direction_seeds)
    w0, v1, v2 = flatten(dict(model.named_parameters())).detach(), flatten(d1), flatten(d2)
    axis = torch.linspace(-1, 1, 21, dtype=F64)
    for i, j in [(10, 10), (0, 20), (15, 4)]:
        loss, _ = loss_at(model, w0 + axis[i] * v1 + axis[j] * v2, (data.x_train, data.y_train))
        assert float(land.interpolant.table[i, j]) == pytest.approx(loss, rel=1e-5)  # float32 evaluation


def test_a_ball_rolls_on_the_slice_through_run_spec_and_the_command_line(cache, tmp_path):
    """Backend auto falls back to the torch loop; momentum from the default start reaches the trained
    minimum; ``descent run --landscape digits-slice`` writes its trajectory."""
    from typer.testing import CliRunner

    from descent.cli import app
    from descent.landscapes import get_landscape, landscape_names
    from descent.spec import RunSpec, run_spec

    assert "digits-slice" in landscape_names()
    spec = RunSpec(landscape="digits-slice", landscape_params={"resolution": 21}, steps=1500, backend="auto")
    trajectory = run_spec(spec)
    assert trajectory.fallback and "not formulas" in trajectory.fallback
    assert trajectory.outcomes == ["minimum:trained"]
    land = get_landscape("digits-slice", resolution=21)
    trained = torch.tensor([land.point("trained").position], dtype=F64)
    assert float((trajectory.final_position - trained).norm()) < 0.05
    out = tmp_path / "run"
    args = [
        "run",
        "--landscape",
        "digits-slice",
        "--param",
        "resolution=21",
        "--steps",
        "300",
        "--out",
        str(out),
    ]
    result = CliRunner().invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert (out / "trajectory.json").exists()
