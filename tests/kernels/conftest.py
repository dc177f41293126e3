"""Kernel tests: one Numba thread per process (``pytest -n 2`` runs two workers side by side)."""

import numba
import torch

numba.set_num_threads(1)
torch.set_num_threads(1)
