"""Compiled kernels: the step loop generated from a landscape's expression tree and compiled with
Numba, each particle's state in local variables across all steps (``simulate(backend="kernel")``).

- :mod:`~descent.kernels.codegen`: U and grad U of one particle as straight-line source;
- :mod:`~descent.kernels.loop`: the step loop of a rule, with the events inside;
- :mod:`~descent.kernels.cache`: compilation, cached on disk outside the working tree;
- :mod:`~descent.kernels.backend`: which runs the kernels take, and the run itself.
"""

from descent.kernels.backend import kernel_info, run_kernel, unsupported
from descent.kernels.cache import cache_dir

__all__ = ["cache_dir", "kernel_info", "run_kernel", "unsupported"]
