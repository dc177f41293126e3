"""The training lab's datasets: every name loads, the split is stratified and seeded, features are
standardised with the training part's statistics only, CSVs load and malformed ones are named."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn import datasets

from descent._errors import DescentError
from descent.train.data import DATASETS, load_dataset

BUNDLES = {
    "digits": datasets.load_digits,
    "iris": datasets.load_iris,
    "wine": datasets.load_wine,
    "breast-cancer": datasets.load_breast_cancer,
}


def raw_rows(data, part: str) -> np.ndarray:
    """The part's features mapped back to the raw scale with the dataset's stored mean and std."""
    x = getattr(data, f"x_{part}")
    return (x * data.feature_std + data.feature_mean).numpy()


def row_index(raw: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Each row's index in ``raw`` (they are matched to 1e-9, and every row must be found)."""
    distance = np.abs(rows[:, None, :] - raw[None, :, :]).max(axis=2)
    index = distance.argmin(axis=1)
    assert np.all(distance[np.arange(len(rows)), index] < 1e-9)
    return index


@pytest.mark.parametrize("name", DATASETS)
def test_every_dataset_loads_with_its_types(name):
    data = load_dataset(name, seed=1)
    n = len(data.x_train) + len(data.x_test)
    assert data.x_train.dtype == data.x_test.dtype == torch.float64
    assert data.x_train.shape[1] == data.n_features == len(data.feature_names)
    assert len(data.y_train) == len(data.x_train) and len(data.y_test) == len(data.x_test)
    assert abs(len(data.x_test) - 0.2 * n) <= 1
    if name == "linear":
        assert data.task == "regression" and data.n_classes is None and data.n_outputs == 1
        assert data.y_train.dtype == torch.float64
        return
    assert data.task == "classification" and data.y_train.dtype == torch.int64
    assert data.n_outputs == data.n_classes == int(torch.cat([data.y_train, data.y_test]).max()) + 1
    if name in BUNDLES:
        bundle = BUNDLES[name]()
        assert (n, data.n_features) == bundle.data.shape
        assert data.n_classes == len(bundle.target_names)


@pytest.mark.parametrize("name", ["digits", "wine", "moons"])
def test_split_is_stratified(name):
    data = load_dataset(name, test_fraction=0.25, seed=3)
    every = torch.cat([data.y_train, data.y_test]).bincount(minlength=data.n_classes)
    test = data.y_test.bincount(minlength=data.n_classes)
    assert torch.all((test - 0.25 * every).abs() <= 1)


def test_standardisation_uses_the_training_part_only():
    data = load_dataset("wine", seed=2)
    raw = datasets.load_wine().data
    train = row_index(raw, raw_rows(data, "train"))
    test = row_index(raw, raw_rows(data, "test"))
    assert sorted([*train, *test]) == list(range(len(raw)))  # a partition of the rows
    np.testing.assert_allclose(data.feature_mean.numpy(), raw[train].mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(data.feature_std.numpy(), raw[train].std(axis=0), rtol=1e-12)
    torch.testing.assert_close(data.x_train.mean(0), torch.zeros(13, dtype=torch.float64))
    torch.testing.assert_close(data.x_train.std(0, unbiased=False), torch.ones(13, dtype=torch.float64))
    assert data.x_test.mean(0).abs().max() > 1e-3  # the test part's own statistics are not used


def test_constant_features_keep_unit_scale():
    data = load_dataset("digits", seed=0)
    constant = data.feature_std == 1
    assert constant.any()  # digits has pixels that are 0 in every training image
    assert torch.all(data.x_train[:, constant] == 0)


def test_first_n_examples_before_the_split():
    data = load_dataset("digits", n=200, seed=0)
    raw = datasets.load_digits().data
    assert len(data.x_train) + len(data.x_test) == 200
    both = np.concatenate([raw_rows(data, "train"), raw_rows(data, "test")])
    found = row_index(raw[:200], both)
    assert sorted(found) == list(range(200))


def test_seed_reproducible_and_changes_the_split():
    a, b, c = (load_dataset("moons", seed=s, n=100) for s in (4, 4, 5))
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_test, b.y_test)
    assert not torch.equal(a.x_train, c.x_train)


def test_dtype_and_noise():
    data = load_dataset("circles", n=50, noise=0.0, dtype=torch.float32)
    assert data.x_train.dtype == torch.float32 and data.y_train.dtype == torch.int64
    radius = (data.x_train * data.feature_std + data.feature_mean).norm(dim=1)
    close = torch.minimum((radius - 1).abs(), (radius - 0.5).abs())
    assert close.max() < 1e-5  # noise 0: every point on one of the two circles


def write(path, text):
    path.write_text(text)
    return str(path)


def test_csv_with_a_text_target(tmp_path):
    rows = ["a,b,kind"] + [f"{i},{i % 3 * 0.5},{'cat' if i % 2 else 'dog'}" for i in range(20)]
    data = load_dataset(write(tmp_path / "pets.csv", "\n".join(rows) + "\n"), target="kind")
    assert data.task == "classification" and data.class_names == ("cat", "dog")
    assert data.feature_names == ("a", "b") and data.n_classes == 2
    a = (data.x_train[:, 0] * data.feature_std[0] + data.feature_mean[0]).round().long()
    assert torch.equal(data.y_train, 1 - a % 2)  # odd a: cat (0), even a: dog (1)


def test_csv_numeric_target_is_regression(tmp_path):
    rows = ["x,y"] + [f"{i},{0.37 * i}" for i in range(30)]
    data = load_dataset(write(tmp_path / "line.csv", "\n".join(rows)), target="y")
    assert data.task == "regression" and data.y_train.dtype == torch.float64
    x = data.x_train[:, 0] * data.feature_std[0] + data.feature_mean[0]
    torch.testing.assert_close(data.y_train, 0.37 * x)


@pytest.mark.parametrize(
    "text, where",
    [
        ("a,b,t\n1,2,0\n3,4,1\n5,oops,0\n", "row 4 column b"),
        ("a,b,t\n1,2,0\n3,4\n", "row 3"),
        ("a,b,t\n1,2,0\n3,,1\n", "row 3 column b"),
        ("a,b,t\n1,inf,0\n", "row 2 column b"),
    ],
)
def test_malformed_csv_names_file_row_and_column(tmp_path, text, where):
    path = write(tmp_path / "bad.csv", text)
    with pytest.raises(DescentError) as error:
        load_dataset(path, target="t")
    message = str(error.value)
    assert f"{path} {where}" in message and "\n" not in message


def test_csv_target_must_be_a_column(tmp_path):
    path = write(tmp_path / "t.csv", "a,b\n1,2\n")
    with pytest.raises(DescentError, match="expected a column of .*: a, b"):
        load_dataset(path, target="c")
    with pytest.raises(DescentError, match="invalid target=None"):
        load_dataset(path)


@pytest.mark.parametrize(
    "kwargs, parameter",
    [
        ({"name": "mnist"}, "dataset"),
        ({"name": "missing.csv", "target": "y"}, "dataset"),
        ({"name": "iris", "test_fraction": 1.0}, "test_fraction"),
        ({"name": "iris", "test_fraction": 0}, "test_fraction"),
        ({"name": "iris", "n": 151}, "n"),
        ({"name": "iris", "n": 1}, "n"),
        ({"name": "iris", "noise": 0.1}, "noise"),
        ({"name": "iris", "target": "species"}, "target"),
        ({"name": "iris", "seed": -1}, "seed"),
        ({"name": "iris", "n": 50}, "n"),  # iris is sorted: its first 50 are one class
        ({"name": "iris", "n": 51}, "test_fraction"),  # a class of 1: too few to stratify
        ({"name": "moons", "noise": -1}, "noise"),
    ],
)
def test_bad_input_is_refused(kwargs, parameter):
    with pytest.raises(DescentError) as error:
        load_dataset(**kwargs)
    assert error.value.parameter == parameter
