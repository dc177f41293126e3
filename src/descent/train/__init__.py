"""The training lab: datasets, models, the batch / SGD / mini-batch loop, checkpoints and exact
resume. Names are imported when first used (PEP 562), so ``import descent.train`` stays cheap.

>>> from descent.train import load_dataset, build_model
>>> data = load_dataset("moons", n=100, seed=0)
>>> build_model("mlp:8", data.n_features, data.n_outputs)(data.x_train).shape
torch.Size([80, 2])
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from descent._lazy import lazy_exports

_EXPORTS = {
    "DATASETS": "descent.train.data",
    "Dataset": "descent.train.data",
    "load_dataset": "descent.train.data",
    "ACTIVATIONS": "descent.train.models",
    "INITS": "descent.train.models",
    "LOSSES": "descent.train.models",
    "MODELS": "descent.train.models",
    "accuracy": "descent.train.models",
    "build_model": "descent.train.models",
    "flat_parameters": "descent.train.models",
    "functional_loss": "descent.train.models",
    "loss_function": "descent.train.models",
    "parameter_dict": "descent.train.models",
    "set_flat_parameters": "descent.train.models",
    "METRICS": "descent.train.loop",
    "SCHEDULES": "descent.train.loop",
    "TrainConfig": "descent.train.loop",
    "TrainResult": "descent.train.loop",
    "train": "descent.train.loop",
    "Eigen": "descent.train.hessian",
    "HessianOperator": "descent.train.hessian",
    "SharpnessTracker": "descent.train.hessian",
    "Trace": "descent.train.hessian",
    "adam_preconditioner": "descent.train.hessian",
    "hutchinson_trace": "descent.train.hessian",
    "hvp": "descent.train.hessian",
    "top_eigenvalues": "descent.train.hessian",
    "PCAPlane": "descent.train.slices",
    "PlanePath": "descent.train.slices",
    "Slice1D": "descent.train.slices",
    "Slice2D": "descent.train.slices",
    "filter_normalized_direction": "descent.train.slices",
    "path_on_plane": "descent.train.slices",
    "pca_plane": "descent.train.slices",
    "plane_slice": "descent.train.slices",
    "slice_1d": "descent.train.slices",
    "slice_1d_figure": "descent.train.slices",
    "slice_2d": "descent.train.slices",
    "slice_figure": "descent.train.slices",
}

if TYPE_CHECKING:
    from descent.train.data import DATASETS as DATASETS
    from descent.train.data import Dataset as Dataset
    from descent.train.data import load_dataset as load_dataset
    from descent.train.hessian import Eigen as Eigen
    from descent.train.hessian import HessianOperator as HessianOperator
    from descent.train.hessian import SharpnessTracker as SharpnessTracker
    from descent.train.hessian import Trace as Trace
    from descent.train.hessian import adam_preconditioner as adam_preconditioner
    from descent.train.hessian import hutchinson_trace as hutchinson_trace
    from descent.train.hessian import hvp as hvp
    from descent.train.hessian import top_eigenvalues as top_eigenvalues
    from descent.train.loop import METRICS as METRICS
    from descent.train.loop import SCHEDULES as SCHEDULES
    from descent.train.loop import TrainConfig as TrainConfig
    from descent.train.loop import TrainResult as TrainResult
    from descent.train.loop import train as train
    from descent.train.models import ACTIVATIONS as ACTIVATIONS
    from descent.train.models import INITS as INITS
    from descent.train.models import LOSSES as LOSSES
    from descent.train.models import MODELS as MODELS
    from descent.train.models import accuracy as accuracy
    from descent.train.models import build_model as build_model
    from descent.train.models import flat_parameters as flat_parameters
    from descent.train.models import functional_loss as functional_loss
    from descent.train.models import loss_function as loss_function
    from descent.train.models import parameter_dict as parameter_dict
    from descent.train.models import set_flat_parameters as set_flat_parameters
    from descent.train.slices import PCAPlane as PCAPlane
    from descent.train.slices import PlanePath as PlanePath
    from descent.train.slices import Slice1D as Slice1D
    from descent.train.slices import Slice2D as Slice2D
    from descent.train.slices import filter_normalized_direction as filter_normalized_direction
    from descent.train.slices import path_on_plane as path_on_plane
    from descent.train.slices import pca_plane as pca_plane
    from descent.train.slices import plane_slice as plane_slice
    from descent.train.slices import slice_1d as slice_1d
    from descent.train.slices import slice_1d_figure as slice_1d_figure
    from descent.train.slices import slice_2d as slice_2d
    from descent.train.slices import slice_figure as slice_figure


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())


__all__ = sorted(_EXPORTS)
