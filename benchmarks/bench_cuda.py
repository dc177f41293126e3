"""Issue 9's GPU figures: descent's CUDA kernel against JAX on the same GPU (run where a GPU is).

The double well U = (x^2 - 1)^2 - 0.3 x + y^2, momentum lr 0.01, beta 0.9, float32, N = 1e8 particles
uniform in [-2, 2] x [-1.5, 1.5], 2000 steps. Ours: ``descent.kernels.cuda.run_on_device`` with its
events on and the summary save (the kernels' time; no trajectory is built). JAX: jit of ``lax.scan``
(default unroll) over ``vmap(grad(U))``. Compile and a warm-up run are timed apart, then ``REPS`` timed
runs each (median, all times kept). The share of the float32 peak counts a fused multiply-add as two
flops: with the issue's 15 flops per particle-step (gradient and update, what JAX computes) and with
what our kernel executes (U and the events included, :func:`descent.kernels.cuda.flops_per_step`).

    N=1e8 STEPS=2000 REPS=3 python3 benchmarks/bench_cuda.py > out/bench/cuda.json

Prints one JSON object. Without a GPU it runs on Numba's CUDA simulator when NUMBA_ENABLE_CUDASIM=1
(use a small N: it checks the script, not the speed).
"""

import json
import os
import statistics
import sys
import time

os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # leave the GPU's memory to both
import numpy as np
import torch

from descent.dynamics import Events
from descent.dynamics.save import SaveAt
from descent.kernels.cuda import flops_per_step, run_on_device, simulated
from descent.landscapes import get_landscape
from descent.optim import Optimizer

N = int(float(os.environ.get("N", "1e8")))
STEPS = int(os.environ.get("STEPS", "2000"))
REPS = int(os.environ.get("REPS", "3"))
LR, BETA = 0.01, 0.9


def main() -> None:
    device = "cpu" if simulated() else "cuda"
    well = get_landscape("double-well")
    gen = torch.Generator(device=device).manual_seed(0)
    low, high = torch.tensor([-2.0, -1.5], device=device), torch.tensor([2.0, 1.5], device=device)
    starts = low + (high - low) * torch.rand(N, 2, device=device, generator=gen)  # float32
    opt = Optimizer.build("momentum", lr=LR, momentum=BETA)
    out = {"N": N, "steps": STEPS, "dtype": "float32"}
    out["device"] = torch.cuda.get_device_name() if device == "cuda" else "Numba CUDA simulator"

    start = time.perf_counter()
    run = run_on_device(well, opt, starts, 1, SaveAt.summary(), Events())  # compiles or loads the kernels
    out["ours_compile_s"], out["ours_first_call_s"] = run.kernel.compile_seconds, time.perf_counter() - start
    run_on_device(well, opt, starts, STEPS, SaveAt.summary(), Events())  # warm-up
    times = []
    for _ in range(REPS):
        run = run_on_device(well, opt, starts, STEPS, SaveAt.summary(), Events())
        times.append(run.seconds)
    out["ours_active_share"] = float((run.state[run.rows["STOP"]] < 0).float().mean())
    out["ours_s"], out["ours_rate"] = times, N * STEPS / statistics.median(times)
    ours_x = torch.stack([run.state[run.rows["X0"]], run.state[run.rows["X1"]]], dim=1).cpu().numpy()
    del run
    if device == "cuda":
        torch.cuda.empty_cache()

    try:
        import jax
        import jax.numpy as jnp
        from jax import lax

        def energy(p):
            a = p[0] * p[0] - 1
            return a * a - 0.3 * p[0] + p[1] * p[1]

        grad = jax.vmap(jax.grad(energy))

        def body(carry, _):
            w, v = carry
            v = BETA * v - LR * grad(w)
            return (w + v, v), None

        def scan(w0):
            (w, _), _ = lax.scan(body, (w0, jnp.zeros_like(w0)), None, length=STEPS)
            return w

        w0 = jax.device_put(jnp.asarray(starts.cpu().numpy()))
        start = time.perf_counter()
        compiled = jax.jit(scan).lower(w0).compile()
        out["jax_compile_s"] = time.perf_counter() - start
        compiled(w0).block_until_ready()  # warm-up
        times = []
        for _ in range(REPS):
            start = time.perf_counter()
            w = compiled(w0).block_until_ready()
            times.append(time.perf_counter() - start)
        out["jax_s"], out["jax_rate"], out["jax_devices"] = (
            times,
            N * STEPS / statistics.median(times),
            str(jax.devices()),
        )
        out["max_abs_diff_vs_jax"] = float(np.max(np.abs(np.asarray(w) - ours_x)))
        out["x_jax"] = out["ours_rate"] / out["jax_rate"]
    except ImportError as error:
        out["jax"] = f"not run: {error}"

    flops = flops_per_step(well, "momentum")
    out["flops_per_particle_step"] = flops
    if device == "cuda":
        from numba import cuda

        gpu = cuda.get_current_device()
        peak = gpu.MULTIPROCESSOR_COUNT * 128 * 2 * gpu.CLOCK_RATE * 1e3  # 128 FP32 lanes per SM (Hopper)
        out["fp32_peak_flops"] = peak
        executed = flops["gradient"] + flops["rule"] + flops["events"]
        for label, count in (("15", 15), ("executed", executed)):
            out[f"percent_of_peak_{label}"] = 100 * out["ours_rate"] * count / peak
    json.dump(out, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
