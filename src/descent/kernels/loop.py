"""Source of the step loop of one (expression, rule, dtype): a block of particles' state in local
arrays, the step loop outside, the particles of the block inside, in straight-line code that LLVM
vectorises.

Blocks of ``BLOCK`` particles run in parallel (``prange``). A block keeps x, U, g, the last update
u and the rule's state m of its particles in local arrays of length ``BLOCK``, one per coordinate,
with their events. For each particle, with x, U, g, u, m its state:

    state 0: diverged if not finite or beyond the widened box, else its events
    for k = 1, 2, ... while k <= steps and a particle of the block has not stopped:
        for each particle of the block (no branch: a stopped particle is masked by selects)
            s, m' = rule(g, m)        gd: s = -lr g
                                      momentum: m' = beta m - lr g, s = m'
                                      nesterov: m' = beta m + g, s = -lr (g + beta m')
            U', g' = value_and_grad(x + s)
            diverged at k (frozen at its last finite state) if the new state is bad,
            else x, U, g, u, m = x + s, U', g', s, m' and the events of state k
        a frame every ``every`` steps (0: the start only)

A stopped particle is still computed (its result is discarded by the selects), so the block's cost
is that of its longest-running particle; the block ends its step loop when all of its particles
have stopped.

The events are those of :mod:`descent.dynamics.events` with the same thresholds: ``diverged``
(beyond the box widened by ``diverge_spans`` box sizes, or U + max_j g_j not finite), ``left_box``
(landscapes unbounded below; it stops the particle), ``converged`` (|g| < grad_tol and |u| <
step_tol; the kernel is given the squared thresholds of :func:`squared_threshold` and compares
sums of squares, with the same result as comparing their square roots), ``target`` (U <=
target_loss), the running minimum of U and the last step the particle was moving and not converged.
``converged`` and ``target`` stop it only when asked.

Float32 kernels (``flush=True``) set the FTZ and DAZ bits of the x86 MXCSR register for each block
(:mod:`descent.kernels.flush`): every subnormal input or result of the arithmetic is taken as zero.
Numerically this replaces any value below 2^-126 = 1.18e-38 in magnitude by 0 (a relative change of
at most 2^-23 relative to the smallest normal, i.e. an absolute change below 1.2e-38): on the double
well y reaches exactly 0 after ~1700 steps instead of crawling through the subnormals, and the float32
results stay within the float32 tolerance stated in the tests (outcomes equal to float64, positions
within 1e-3). Without it the subnormal arithmetic costs a microcode assist per operation.
"""

from __future__ import annotations

import re

BLOCK = 256
RULES = ("gd", "momentum", "nesterov")

_RULE_LINES = {
    "gd": ["s{j} = nlr * g{j}", "n{j} = m{j}"],
    "momentum": ["n{j} = beta * m{j} - lr * g{j}", "s{j} = n{j}"],
    "nesterov": ["n{j} = beta * m{j} + g{j}", "s{j} = nlr * (g{j} + beta * n{j})"],
}
_STATE = ("X", "G", "U", "M")  # local arrays per coordinate: position, gradient, last update, rule state
_FLOATS = ("E", "LR", "BETA", "LOW")
_EVENTS = ("DIV", "LEFT", "CONV", "TGT", "UNSET", "LOWK", "STOP")  # int64 local arrays


def squared_threshold(tol, dtype) -> object:
    """The T of ``dtype`` with sqrt(a) < tol exactly when a < T, for every a >= 0 (and NaN): the
    correctly rounded sqrt is monotone, so T is the least a with sqrt(a) >= tol, found from tol**2
    by stepping to the neighbouring floats. It spares the kernel two square roots a step."""
    import numpy as np

    t = dtype(tol)
    if not t > 0:  # sqrt(a) < t never holds (t <= 0 or NaN)
        return dtype(-1.0) if t == t else t
    a = t * t
    zero = dtype(0.0)
    if np.sqrt(a) >= t:
        while a > zero and np.sqrt(np.nextafter(a, zero)) >= t:
            a = np.nextafter(a, zero)
    else:
        while np.sqrt(a) < t:
            a = np.nextafter(a, dtype(np.inf))
    return a


def _each(template: str, dim: int, indent: int, sep: str = "\n") -> str:
    pad = " " * indent
    return sep.join(pad + template.format(j=j) for j in range(dim))


def _names(prefix: str, dim: int) -> str:
    return ", ".join(f"{prefix}{j}" for j in range(dim))


def loop_source(rule: str, dim: int, flush: bool = False) -> str:
    """Source of ``run(...)`` for ``rule`` in dimension ``dim`` (it calls ``value_and_grad``);
    ``flush``: FTZ/DAZ around each block (float32 kernels on x86, module docstring)."""
    if rule not in RULES:
        raise ValueError(f"no kernel for the rule {rule!r}")
    xs, gs, xn, gn = _names("x", dim), _names("g", dim), _names("y", dim), _names("h", dim)
    sq = lambda p: " + ".join(f"{p}{j} * {p}{j}" for j in range(dim))  # noqa: E731
    far = " or ".join(f"not (abs((y{j} - c{j}) * f{j}) <= F(1.0))" for j in range(dim))
    outside = " or ".join(f"not (abs((x{j} - c{j}) * b{j}) <= F(1.0))" for j in range(dim))
    gmax = "\n".join(f"{' ' * 16}if h{j} > gm or h{j} != h{j}:\n{' ' * 20}gm = h{j}" for j in range(1, dim))
    # branch-free forms for the inner loop
    far_v = " | ".join(f"(not (abs((y{j} - c{j}) * f{j}) <= one))" for j in range(dim))
    outside_v = " | ".join(f"(not (abs((y{j} - c{j}) * b{j}) <= one))" for j in range(dim))
    gmax_v = "\n".join(
        f"{' ' * 16}gm = h{j} if ((h{j} > gm) | (h{j} != h{j})) else gm" for j in range(1, dim)
    )
    rule_lines = "\n".join(_each(line, dim, 16) for line in _RULE_LINES[rule])
    observe = f"""
                if {sq("g")} < grad_tol and {sq("u")} < step_tol:
                    settled = True
                    if conv < 0:
                        conv = k
                else:
                    settled = False
                    unset = k
                if e < low:
                    low = e
                    low_k = k
                if has_target and e <= target:
                    if tgt < 0:
                        tgt = k
                    if stop_target:
                        stop = k
                if unbounded and ({outside}):
                    if left < 0:
                        left = k
                    stop = k
                if stop_converged and settled:
                    stop = k"""
    # one float and one int local array, a row of BLOCK per variable, at constant offsets: LLVM sees
    # that the rows never overlap (separate arrays would need a run-time alias check each)
    floats = [f"{a}{j}" for a in _STATE for j in range(dim)] + list(_FLOATS)
    rows = {name: f"S[{r * BLOCK} + p]" for r, name in enumerate(floats)}
    rows.update({name: f"I[{r * BLOCK} + p]" for r, name in enumerate(_EVENTS)})
    arrays = (
        f"        S = np.empty({len(floats) * BLOCK}, F)\n"
        f"        I = np.empty({len(_EVENTS) * BLOCK}, np.int64)"
    )
    flush_on = "        saved = get_mxcsr()\n        set_mxcsr(saved | FTZ_DAZ)" if flush else ""
    flush_off = "        set_mxcsr(saved)" if flush else ""
    frame = lambda pad: "\n".join(  # noqa: E731
        [_each("frames_x[f, i, {j}] = X{j}[p]", dim, pad), " " * pad + "frames_e[f, i] = E[p]"]
        + [_each("frames_u[f, i, {j}] = U{j}[p]", dim, pad)]
    )
    source = f"""
def run(starts, lrs, betas, steps, every, center, far_inverse, box_inverse, grad_tol, step_tol,
        target, has_target, stop_converged, stop_target, unbounded,
        frames_x, frames_e, frames_u, final_x, final_e, final_g, final_u,
        diverged, left_box, converged, reached, unsettled, min_loss, min_step, stop_step):
    n = starts.shape[0]
    n_frames = frames_e.shape[0]
    one = F(1.0)
{_each("c{j} = center[{j}]", dim, 4)}
{_each("f{j} = far_inverse[{j}]", dim, 4)}
{_each("b{j} = box_inverse[{j}]", dim, 4)}
    for block in prange((n + {BLOCK} - 1) // {BLOCK}):
{flush_on}
        first = block * {BLOCK}
        count = min(n, first + {BLOCK}) - first
{arrays}
        active = 0
        for p in range(count):  # state 0, one particle at a time
            i = first + p
            lr = lrs[i]
            beta = betas[i]
{_each("x{j} = starts[i, {j}]", dim, 12)}
            e, {gs} = value_and_grad({xs})
{_each("u{j} = F(0.0)", dim, 12)}
            div = -1
            left = -1
            conv = -1
            tgt = -1
            unset = -1
            low = F(np.inf)
            low_k = -1
            stop = -1
            k = 0
{_each("y{j} = x{j}", dim, 12)}
            en = e
{_each("h{j} = g{j}", dim, 12)}
            for _ in range(1):
                gm = h0
{gmax}
                if {far} or not math.isfinite(en + gm):
                    div = 0
                    stop = 0
                    break
{observe}
{_each("X{j}[p] = x{j}", dim, 12)}
{_each("G{j}[p] = g{j}", dim, 12)}
{_each("U{j}[p] = u{j}", dim, 12)}
{_each("M{j}[p] = F(0.0)", dim, 12)}
            E[p] = e
            LR[p] = lr
            BETA[p] = beta
            DIV[p] = div
            LEFT[p] = left
            CONV[p] = conv
            TGT[p] = tgt
            UNSET[p] = unset
            LOW[p] = low
            LOWK[p] = low_k
            STOP[p] = stop
            if stop < 0:
                active += 1
            f = 0
{frame(12)}
        k = 0
        while k < steps and active > 0:
            k += 1
            active = 0
            for p in range(count):  # straight-line, vectorised: selects instead of branches
                lr = LR[p]
                nlr = -lr
                beta = BETA[p]
{_each("x{j} = X{j}[p]", dim, 16)}
{_each("g{j} = G{j}[p]", dim, 16)}
{_each("m{j} = M{j}[p]", dim, 16)}
{_each("u{j} = U{j}[p]", dim, 16)}
                e = E[p]
                stop = STOP[p]
                div = DIV[p]
                left = LEFT[p]
                conv = CONV[p]
                tgt = TGT[p]
                unset = UNSET[p]
                low = LOW[p]
                low_k = LOWK[p]
{rule_lines}
{_each("y{j} = x{j} + s{j}", dim, 16)}
                en, {gn} = value_and_grad({xn})
                gm = h0
{gmax_v}
                live = stop < 0
                bad = ({far_v}) | (not math.isfinite(en + gm))
                ok = live & (not bad)
                gone = live & bad
{_each("X{j}[p] = y{j} if ok else x{j}", dim, 16)}
{_each("G{j}[p] = h{j} if ok else g{j}", dim, 16)}
{_each("U{j}[p] = s{j} if ok else u{j}", dim, 16)}
{_each("M{j}[p] = n{j} if ok else m{j}", dim, 16)}
                E[p] = en if ok else e
                settled = ({sq("h")} < grad_tol) & ({sq("s")} < step_tol)
                CONV[p] = k if (ok & settled & (conv < 0)) else conv
                UNSET[p] = k if (ok & (not settled)) else unset
                lower = ok & (en < low)
                LOW[p] = en if lower else low
                LOWK[p] = k if lower else low_k
                hit = ok & has_target & (en <= target)
                TGT[p] = k if (hit & (tgt < 0)) else tgt
                out = ok & unbounded & ({outside_v})
                LEFT[p] = k if (out & (left < 0)) else left
                DIV[p] = k if gone else div
                ended = gone | out | (hit & stop_target) | (ok & stop_converged & settled)
                stop = k if ended else stop
                STOP[p] = stop
                active += stop < 0
            if every > 0 and k % every == 0:
                f = k // every
                for p in range(count):
                    i = first + p
{frame(20)}
        if every > 0:  # a stopped block keeps its particles' states in the frames still to come
            for f in range(k // every + 1, n_frames):
                for p in range(count):
                    i = first + p
{frame(20)}
        for p in range(count):
            i = first + p
{_each("final_x[i, {j}] = X{j}[p]", dim, 12)}
            final_e[i] = E[p]
{_each("final_g[i, {j}] = G{j}[p]", dim, 12)}
{_each("final_u[i, {j}] = U{j}[p]", dim, 12)}
            diverged[i] = DIV[p]
            left_box[i] = LEFT[p]
            converged[i] = CONV[p]
            reached[i] = TGT[p]
            unsettled[i] = UNSET[p]
            min_loss[i] = LOW[p]
            min_step[i] = LOWK[p]
            stop_step[i] = STOP[p]
{flush_off}
"""
    return re.sub(r"\b([A-Z]+\d*)\[p\]", lambda m: rows[m.group(1)], source)
