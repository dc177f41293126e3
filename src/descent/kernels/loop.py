"""Source of the step loop of one (expression, rule, dtype): a block of particles' state in local
arrays, the step loop outside, the particles of the block inside, in straight-line code that LLVM
vectorises.

Blocks of ``BLOCK`` particles run in parallel (``prange``). A block keeps x, U, g, the last update
u, the rule's state m (Adam: m, v and AMSGrad's max v) and the hyper-parameters of its particles in
local arrays of length ``BLOCK``, one per coordinate, with their events. For each particle, with
x, U, g, u, m its state:

    state 0: diverged if not finite or beyond the widened box, else its events
    for k = 1, 2, ... while k <= steps and a particle of the block has not stopped:
        for each particle of the block (no branch: a stopped particle is masked by selects)
            s, m' = rule(g, m)        gd: s = -lr g
                                      momentum: m' = beta m - lr g, s = m'
                                      nesterov: m' = beta m + g, s = -lr (g + beta m')
                                      adam: m' = b1 m + (1 - b1) g, v' = b2 v + (1 - b2) g^2,
                                        s = -(lr / (1 - b1^t)) m' / (sqrt(v') / sqrt(1 - b2^t) + eps)
                                        (b^t = exp(t log b), t = k; amsgrad: max(v_max, v') for v';
                                        adamw: s - lr wd x)
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

_ADAM_PRE = ["bias1 = BIA[p]", "bias2 = BIB[p]", "st = -(lr / bias1)"]
# the bias corrections of step t = k, as torch computes them (1 - exp(t log beta)), in two rows of the
# block before its vectorised loop: once a step when its particles share beta1 and beta2 (float
# hyper-parameters), else per particle; no exp in the vectorised loop, the same bits either way
_ADAM_SHARED = dict(
    shared=("la", "lb"),
    rows=("BIA", "BIB"),
    block_pre=[
        "t = F(k)",
        "if shared:",
        "    ub1 = one - math.exp(t * la0)",
        "    ub2 = math.sqrt(one - math.exp(t * lb0))",
        "    for p in range(count):",
        "        BIA[p] = ub1",
        "        BIB[p] = ub2",
        "else:",
        "    for p in range(count):",
        "        BIA[p] = one - math.exp(t * LA[p])",
        "        BIB[p] = math.sqrt(one - math.exp(t * LB[p]))",
    ],
)
_ADAM_MOMENTS = ["mn{j} = ba * m{j} + ca * g{j}", "vn{j} = bb * v{j} + cb * g{j} * g{j}"]
_ADAM_HYPER = ("lr", "ba", "ca", "la", "bb", "cb", "lb", "eps")


class _Rule:
    """A rule in the kernel: its per-particle hyper-parameters (lower-case kernel variables, each
    also a row of the block), its state per coordinate (``m``: old value m{j}, new value mn{j}),
    lines once per particle and step (``pre``) and lines per coordinate, which set s{j} (the
    update) and the new state."""

    def __init__(self, hyper, state, pre, lines, shared=(), rows=(), block_pre=()):
        self.hyper, self.state, self.pre, self.lines = tuple(hyper), tuple(state), list(pre), list(lines)
        # ``block_pre``: lines once a block and step, before its particles' loop, which may fill the
        # extra ``rows`` of the block; ``shared``: hyper-parameters h whose equality over the block
        # they may test (``shared``; h0 the block's first value of h)
        self.shared, self.rows, self.block_pre = tuple(shared), tuple(rows), list(block_pre)


_RULES = {
    "gd": _Rule(("lr",), (), ["nlr = -lr"], ["s{j} = nlr * g{j}"]),
    "momentum": _Rule(("lr", "beta"), ("m",), [], ["mn{j} = beta * m{j} - lr * g{j}", "s{j} = mn{j}"]),
    "nesterov": _Rule(
        ("lr", "beta"),
        ("m",),
        ["nlr = -lr"],
        ["mn{j} = beta * m{j} + g{j}", "s{j} = nlr * (g{j} + beta * mn{j})"],
    ),
    # torch.optim's Adam: eps outside the square root, bias corrections 1 - exp(t log beta)
    "adam": _Rule(
        _ADAM_HYPER,
        ("m", "v"),
        _ADAM_PRE,
        [*_ADAM_MOMENTS, "s{j} = st * mn{j} / (math.sqrt(vn{j}) / bias2 + eps)"],
        **_ADAM_SHARED,
    ),
    "amsgrad": _Rule(
        _ADAM_HYPER,
        ("m", "v", "a"),
        _ADAM_PRE,
        [
            *_ADAM_MOMENTS,
            "an{j} = a{j} if a{j} >= vn{j} else vn{j}",  # torch.maximum (NaN handled by the events)
            "s{j} = st * mn{j} / (math.sqrt(an{j}) / bias2 + eps)",
        ],
        **_ADAM_SHARED,
    ),
    # AdamW: the decoupled decay -lr wd x added to the Adam update
    "adamw": _Rule(
        (*_ADAM_HYPER, "wd"),
        ("m", "v"),
        [*_ADAM_PRE, "decay = (-lr) * wd"],
        [*_ADAM_MOMENTS, "s{j} = decay * x{j} + st * mn{j} / (math.sqrt(vn{j}) / bias2 + eps)"],
        **_ADAM_SHARED,
    ),
}
RULES = tuple(_RULES)
#: the per-particle values each rule's kernel takes, in the order of the rows of ``hyper``: lr,
#: beta (momentum), ba, ca, la = beta1, 1 - beta1, log beta1; bb, cb, lb the same of beta2; eps; wd
HYPER = {name: rule.hyper for name, rule in _RULES.items()}
_STATE = ("X", "G", "U")  # local arrays per coordinate: position, gradient, last update (+ the rule's)
_FLOATS = ("E", "LOW")
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
    spec = _RULES[rule]
    if spec.shared:  # is the block's value of each shared hyper-parameter the same?
        same = " & ".join(f"({h.upper()}[p] == {h}0)" for h in spec.shared)
        shared = "\n".join(
            [
                "        p = 0",
                *(f"        {h}0 = {h.upper()}[p]" for h in spec.shared),
                "        shared = True",
            ]
            + ["        for p in range(count):", f"            shared = shared & {same}"]
        )
    else:
        shared = ""
    block_pre = "\n".join(" " * 12 + line for line in spec.block_pre)
    rule_lines = "\n".join(_each(line, dim, 16) for line in spec.lines)
    hyper_rows = [name.upper() for name in spec.hyper]
    state_rows = [name.upper() for name in spec.state]
    load_hyper = lambda pad: "\n".join(f"{' ' * pad}{h} = {h.upper()}[p]" for h in spec.hyper)  # noqa: E731
    first_hyper = "\n".join(f"{' ' * 12}{h.upper()}[p] = hyper[{r}, i]" for r, h in enumerate(spec.hyper))
    load_state = "\n".join(_each(f"{m}{{j}} = {m.upper()}{{j}}[p]", dim, 16) for m in spec.state)
    zero_state = "\n".join(_each(f"{m.upper()}{{j}}[p] = F(0.0)", dim, 12) for m in spec.state)
    keep_state = "\n".join(
        _each(f"{m.upper()}{{j}}[p] = {m}n{{j}} if ok else {m}{{j}}", dim, 16) for m in spec.state
    )
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
    floats = (
        [f"{a}{j}" for a in (*_STATE, *state_rows) for j in range(dim)]
        + list(_FLOATS)
        + hyper_rows
        + list(spec.rows)
    )
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
def run(starts, hyper, steps, every, center, far_inverse, box_inverse, grad_tol, step_tol,
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
{zero_state}
{first_hyper}
            E[p] = e
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
{shared}
        k = 0
        while k < steps and active > 0:
            k += 1
            active = 0
{block_pre}
            for p in range(count):  # straight-line, vectorised: selects instead of branches
{load_hyper(16)}
{_each("x{j} = X{j}[p]", dim, 16)}
{_each("g{j} = G{j}[p]", dim, 16)}
{load_state}
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
#PRE#
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
{keep_state}
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
    source = source.replace("#PRE#", "\n".join(" " * 16 + line for line in spec.pre))
    return re.sub(r"\b([A-Z]+\d*)\[p\]", lambda m: rows[m.group(1)], source)
