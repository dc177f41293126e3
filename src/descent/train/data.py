"""Datasets for the training lab: scikit-learn's bundled ones, synthetic ones and a user's CSV.

``load_dataset(name)`` returns a :class:`Dataset`: the first ``n`` examples, split into a training and
a test part (stratified by class for classification, seeded), features standardised with the
training part's statistics only: ``x <- (x - mean_train) / std_train`` (a feature constant on the
training part keeps std 1). Nothing is downloaded.

========================  ======================================================================
name                      examples
========================  ======================================================================
digits                    1797 8x8 images, 64 features, 10 classes (scikit-learn, bundled)
iris                      150 flowers, 4 features, 3 classes (bundled; sorted by class)
wine                      178 wines, 13 features, 3 classes (bundled; sorted by class)
breast-cancer             569 tumours, 30 features, 2 classes (bundled)
moons                     two interleaved half circles, 2 features, 2 classes (noise 0.2)
circles                   two concentric circles (radius 1 and 0.5), 2 features, 2 classes (noise 0.1)
spirals                   two interleaved spiral arms, 2 features, 2 classes (noise 0.2)
linear                    regression y = x.w + b + noise, 5 features, w, b ~ N(0, 1) (noise 0.1)
FILE.csv                  a user's table: a header row, numeric features, ``target`` names the column
========================  ======================================================================

A synthetic dataset has ``n`` examples (500 if None), drawn from ``seed`` with Gaussian ``noise``.
A CSV's target is a class label when it is not numeric (labels sorted, then numbered 0, 1, ...) or
when it holds at most 20 distinct integers; otherwise it is a regression target (``task`` overrides).
A malformed CSV raises a one-line :class:`~descent._errors.DescentError` naming the file, the row (the
file's line number: the header is row 1) and the column.

>>> data = load_dataset("iris", test_fraction=0.2, seed=0)
>>> data.task, data.n_features, data.n_classes, len(data.x_train), len(data.x_test)
('classification', 4, 3, 120, 30)
>>> data.y_test.bincount().tolist()  # stratified: 10 of each class
[10, 10, 10]
>>> abs(float(data.x_train.mean())) < 1e-12
True
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from descent._errors import check_number, invalid, listed

BUNDLED = ("digits", "iris", "wine", "breast-cancer")
SYNTHETIC = ("moons", "circles", "spirals", "linear")
#: the built-in names (a path ending in .csv is also a dataset)
DATASETS = BUNDLED + SYNTHETIC
TASKS = ("classification", "regression")
NOISE = {"moons": 0.2, "circles": 0.1, "spirals": 0.2, "linear": 0.1}
SYNTHETIC_SIZE = 500
LINEAR_FEATURES = 5
MAX_CSV_CLASSES = 20


@dataclass(frozen=True, eq=False)
class Dataset:
    """A split, standardised dataset. ``y`` holds int64 class indices for classification and floats
    for regression (shape ``[n]``); ``feature_mean`` and ``feature_std`` are the training part's."""

    name: str
    task: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    n_classes: int | None
    feature_names: tuple[str, ...]
    class_names: tuple[str, ...] | None
    feature_mean: torch.Tensor
    feature_std: torch.Tensor

    @property
    def n_features(self) -> int:
        return int(self.x_train.shape[1])

    @property
    def n_outputs(self) -> int:
        """The model's outputs: one logit per class, or one value for regression."""
        return self.n_classes if self.n_classes is not None else 1


def _check_name(name: object) -> str:
    allowed = f"one of: {listed(DATASETS)}, or a path to a .csv file"
    if not isinstance(name, (str, Path)):
        raise invalid("dataset", name, allowed)
    name = str(name)
    if name in DATASETS:
        return name
    if not name.lower().endswith(".csv"):
        raise invalid("dataset", name, allowed)
    if not Path(name).is_file():
        raise invalid("dataset", name, "an existing .csv file (no such file)")
    return name


def _check_count(parameter: str, value: object, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise invalid(parameter, value, f"an integer >= {low}")
    return int(value)


def _bundled(name: str) -> tuple[np.ndarray, np.ndarray, tuple[str, ...], tuple[str, ...]]:
    from sklearn import datasets

    loader = {
        "digits": datasets.load_digits,
        "iris": datasets.load_iris,
        "wine": datasets.load_wine,
        "breast-cancer": datasets.load_breast_cancer,
    }[name]
    bunch = loader()
    features = tuple(str(f) for f in bunch.feature_names)
    classes = tuple(str(c) for c in bunch.target_names)
    return bunch.data.astype(np.float64), bunch.target.astype(np.int64), features, classes


def _spirals(n: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Two arms r = t, angle t + pi*k, t ~ U(0.25, 3 pi) (k = class), plus N(0, noise^2) per coordinate."""
    y = np.arange(n) % 2
    rng.shuffle(y)
    t = rng.uniform(0.25, 3 * math.pi, n)
    angle = t + math.pi * y
    x = np.stack([t * np.cos(angle), t * np.sin(angle)], axis=1) / math.pi
    return x + noise * rng.standard_normal((n, 2)), y


def _synthetic(name: str, n: int, noise: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn import datasets

    if name == "moons":
        return datasets.make_moons(n_samples=n, noise=noise, random_state=seed)
    if name == "circles":
        return datasets.make_circles(n_samples=n, noise=noise, factor=0.5, random_state=seed)
    rng = np.random.default_rng(seed)
    if name == "spirals":
        return _spirals(n, noise, rng)
    x = rng.standard_normal((n, LINEAR_FEATURES))
    w, b = rng.standard_normal(LINEAR_FEATURES), rng.standard_normal()
    return x, x @ w + b + noise * rng.standard_normal(n)


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def read_csv(path: str | Path, target: str | None, task: str | None = None):
    """A user's CSV as (features ``[n, d]``, targets, feature names, class names or None, task).

    Every row has as many fields as the header; every feature is a finite number; the first bad cell
    raises ``invalid`` naming the file, its row (line number, header = 1) and column."""
    path = Path(path)
    with path.open(newline="", encoding="utf-8-sig") as handle:
        rows = list(csv.reader(handle))
    while rows and not any(cell.strip() for cell in rows[-1]):
        rows.pop()  # trailing blank lines
    if len(rows) < 2:
        raise invalid(f"dataset {path}", "", "a header row and at least one data row")
    header = [cell.strip() for cell in rows[0]]
    if target is None or target not in header:
        raise invalid("target", target, f"a column of {path}: {listed(header)}")
    if len(set(header)) != len(header):
        raise invalid(f"{path} row 1", listed(header), "distinct column names")
    column = header.index(target)
    features, labels = [], []
    for line, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise invalid(f"{path} row {line}", ",".join(row), f"{len(header)} fields, as in the header")
        values = []
        for name, cell in zip(header, row):
            if name == target:
                continue
            value = _number(cell.strip())
            if value is None:
                raise invalid(f"{path} row {line} column {name}", cell, "a finite number")
            values.append(value)
        features.append(values)
        labels.append(row[column].strip())
    for line, label in enumerate(labels, start=2):
        if label == "":
            raise invalid(f"{path} row {line} column {target}", label, "a target value (empty)")
    numbers = [_number(label) for label in labels]
    numeric = all(v is not None for v in numbers)
    if task is None:
        few_integers = numeric and len(set(numbers)) <= MAX_CSV_CLASSES
        integers = numeric and all(float(v).is_integer() for v in numbers)  # type: ignore[arg-type]
        task = "classification" if not numeric or (few_integers and integers) else "regression"
    x = np.asarray(features, dtype=np.float64).reshape(len(rows) - 1, len(header) - 1)
    names = tuple(name for name in header if name != target)
    if task == "regression":
        if not numeric:
            bad = next(i for i, v in enumerate(numbers) if v is None)
            raise invalid(f"{path} row {bad + 2} column {target}", labels[bad], "a finite number")
        return x, np.asarray(numbers, dtype=np.float64), names, None, task
    keys = sorted(set(numbers)) if numeric else sorted(set(labels))
    index = {key: i for i, key in enumerate(keys)}
    y = np.asarray([index[v] for v in (numbers if numeric else labels)], dtype=np.int64)
    classes = tuple(f"{key:g}" if numeric else str(key) for key in keys)
    return x, y, names, classes, task


def _split(y: np.ndarray, task: str, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.model_selection import train_test_split

    index = np.arange(len(y))
    stratify = y if task == "classification" else None
    try:
        return train_test_split(index, test_size=test_fraction, random_state=seed, stratify=stratify)
    except ValueError as error:
        detail = " ".join(str(error).split())
        raise invalid("test_fraction", test_fraction, f"a split this data allows ({detail})") from None


def load_dataset(
    name: str,
    *,
    target: str | None = None,
    test_fraction: float = 0.2,
    seed: int = 0,
    n: int | None = None,
    noise: float | None = None,
    task: str | None = None,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
) -> Dataset:
    """Load ``name`` (a name in ``DATASETS`` or a path to a .csv), keep its first ``n`` examples (a
    synthetic one draws ``n``), split off ``test_fraction`` for testing (stratified, ``seed``) and
    standardise the features with the training part's mean and std. ``noise`` is a synthetic
    dataset's; ``target`` and ``task`` a CSV's."""
    name = _check_name(name)
    is_csv = name not in DATASETS
    if is_csv and target is None:
        raise invalid("target", target, f"the name of the target column of {name}")
    if not is_csv and target is not None:
        raise invalid("target", target, "None (only a .csv dataset has a target column to name)")
    if task is not None and (not is_csv or task not in TASKS):
        allowed = f"one of: {listed(TASKS)}" if is_csv else "None (only a .csv dataset's task is chosen)"
        raise invalid("task", task, allowed)
    test_fraction = check_number("test_fraction", test_fraction, 0, 1, low_open=True, high_open=True)
    seed = _check_count("seed", seed, 0)
    if n is not None:
        n = _check_count("n", n, 2)
    if noise is not None and name not in SYNTHETIC:
        raise invalid("noise", noise, f"None (only a synthetic dataset has noise: {listed(SYNTHETIC)})")
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise invalid("dtype", dtype, "a floating torch dtype (torch.float64, torch.float32)")

    class_names: tuple[str, ...] | None
    if name in SYNTHETIC:
        noise = check_number("noise", NOISE[name] if noise is None else noise, 0)
        x, y = _synthetic(name, SYNTHETIC_SIZE if n is None else n, noise, seed)
        task = "regression" if name == "linear" else "classification"
        features = tuple(f"x{i}" for i in range(x.shape[1]))
        class_names = None if task == "regression" else ("0", "1")
    else:
        if name in BUNDLED:
            x, y, features, class_names = _bundled(name)
            task = "classification"
        else:
            x, y, features, class_names, task = read_csv(name, target, task)
        if n is not None:
            if n > len(x):
                raise invalid("n", n, f"an integer in [2, {len(x)}] ({name} has {len(x)} examples)")
            x, y = x[:n], y[:n]

    if task == "classification" and len(np.unique(y)) < 2:
        raise invalid("n", n, f"a count whose examples hold at least 2 classes ({name}'s first hold 1)")
    train, test = _split(y, task, test_fraction, seed)
    mean = x[train].mean(axis=0)
    std = x[train].std(axis=0)
    std = np.where(std > 0, std, 1.0)
    x = (x - mean) / std
    as_x = dict(dtype=dtype, device=device)
    as_y = dict(dtype=torch.int64 if task == "classification" else dtype, device=device)
    n_classes = None
    if task == "classification":
        n_classes = len(class_names) if class_names is not None else int(y.max()) + 1
    return Dataset(
        name=name,
        task=task,
        x_train=torch.as_tensor(x[train], **as_x),
        y_train=torch.as_tensor(y[train], **as_y),
        x_test=torch.as_tensor(x[test], **as_x),
        y_test=torch.as_tensor(y[test], **as_y),
        n_classes=n_classes,
        feature_names=features,
        class_names=class_names,
        feature_mean=torch.as_tensor(mean, **as_x),
        feature_std=torch.as_tensor(std, **as_x),
    )
