"""Source of the step loop of one (expression, rule, dtype): a block of particles' state in local
arrays, the step loop outside, the particles of the block inside, in straight-line code that LLVM
vectorises; the rare events in a second, scalar pass.

A run's state lives in one array ``state[R, N]`` of the kernel's float type, a row per quantity
(:func:`layout`): position x, gradient g, last update u, the rule's state m (Adam: m, v and AMSGrad's
max v), loss U, and the events, whose step numbers are stored as floats (exact: float64 to 2^53,
float32 to 2^24 steps). Two functions work on it: ``start`` computes state 0 of every particle,
``advance`` runs steps k0+1..k1, so a long run goes in chunks (progress, Ctrl-C keeps what is done).
``advance`` runs the blocks ``first_block`` to ``last_block - 1`` of ``BLOCK`` particles, one after
the other, without the GIL: the host runs ranges of blocks on several threads at once (compiled
without Numba's ``parallel=True``, a kernel compiles in about 60 % of the time). A block copies the
rows the hot loop needs into a local array, with its hyper-parameters. For each particle, with x, U,
g, u, m its state:

    state 0: diverged if not finite or beyond the widened box, else observed (below)
    for k = k0+1, ..., k1 while a particle of the block has not stopped:
        hot pass, every particle of the block (no branch: a stopped particle is masked by selects)
            s, m' = rule(g, m)        gd: s = -lr g
                                      momentum: m' = beta m - lr g, s = m'
                                      nesterov: m' = beta m + g, s = -lr (g + beta m')
                                      adam: m' = b1 m + (1 - b1) g, v' = b2 v + (1 - b2) g^2,
                                        s = -(lr / (1 - b1^t)) m' / (sqrt(v') / sqrt(1 - b2^t) + eps)
                                        (b^t = exp(t log b), t = k; amsgrad: max(v_max, v') for v';
                                        adamw: s - lr wd x)
            U', g' = value_and_grad(x + s)
            bad:  beyond the widened box or U' + max_j g'_j not finite; the particle keeps its state
            else: x, U, g, u, m = x + s, U', g', s, m'; running minimum of U and its step
            flag it when bad, or when settled changed, U <= an unreached target, or it left the box
        cold pass, only when a particle was flagged: observe it at step k (below), or mark it
        diverged at k
        a frame at step k: frame marks[k] when the run saves chosen steps (marks[k] = -1: none), else
        frame k / every every ``every`` steps (0: none); the start is frame 0

``observe`` (step k): settled = |g| < grad_tol and |u| < step_tol (the kernel compares sums of
squares with the squared thresholds of :func:`squared_threshold`: the same result as comparing
square roots); ``since`` = the step the particle's current settled stretch began, ``converged`` =
its first settled step; ``target`` = the first step U <= target_loss; ``left_box`` (landscapes
unbounded below) stops it; ``converged`` and ``target`` stop it only when asked. These are the events
of :mod:`descent.dynamics.events` with the same thresholds. A stopped particle is still computed
(its result is discarded by the selects), so a block costs what its longest-running particle costs;
a block ends its loop when all of its particles have stopped.

Why two passes: the events that fire once (converged, target, left_box, diverged, stop) cost the hot
loop only a flag; recorded every step they doubled its instructions (measured: 1.4e9 against
2.0e9 particle-steps per second on the double well in float64, BENCHMARKS.md).

Float32 kernels (``flush=True``) set the FTZ and DAZ bits of the x86 MXCSR register for each block
(:mod:`descent.kernels.flush`): every subnormal input or result of the arithmetic is taken as zero.
Numerically this replaces any value below 2^-126 = 1.18e-38 in magnitude by 0 (an absolute change
below 1.2e-38): on the double well y reaches exactly 0 after ~1700 steps instead of crawling through
the subnormals, and the float32 results stay within the float32 tolerance stated in the tests
(outcomes equal to float64, positions within 1e-3). Without it the subnormal arithmetic costs a
microcode assist per operation.
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
        "    for p in range(lanes):",
        "        BIA[p] = ub1",
        "        BIB[p] = ub2",
        "else:",
        "    for p in range(lanes):",
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

    def __init__(self, hyper, state, pre, lines, shared=(), rows=(), block_pre=(), update=None, draws=()):
        self.hyper, self.state, self.pre, self.lines = tuple(hyper), tuple(state), list(pre), list(lines)
        # ``update``: the state whose new value is the update itself (momentum: s = m'), kept once
        self.update = update
        self.draws = tuple(draws)  # the random streams its lines use (key_<purpose>)
        # ``block_pre``: lines once a block and step, before its particles' loop, which may fill the
        # extra ``rows`` of the block; ``shared``: hyper-parameters h whose equality over the block
        # they may test (``shared``; h0 the block's first value of h)
        self.shared, self.rows, self.block_pre = tuple(shared), tuple(rows), list(block_pre)


_RULES = {
    "gd": _Rule(("lr",), (), ["nlr = -lr"], ["s{j} = nlr * g{j}"]),
    "momentum": _Rule(
        ("lr", "beta"), ("m",), [], ["mn{j} = beta * m{j} - lr * g{j}", "s{j} = mn{j}"], update="m"
    ),
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
    # torch's Adagrad: lr / (1 + (t - 1) lr_decay), eps outside the square root
    "adagrad": _Rule(
        ("lr", "decay", "eps"),
        ("v",),
        ["nlt = -(lr / (one + (kf - one) * decay))"],
        ["vn{j} = v{j} + g{j} * g{j}", "s{j} = nlt * g{j} / (math.sqrt(vn{j}) + eps)"],
    ),
    # Langevin: the step's normal z_j from the counter-based stream ("langevin", particle i, step k - 1)
    "langevin": _Rule(
        ("lr", "temp"),
        (),
        ["nlr = -lr", "scale = math.sqrt(F(2.0) * lr * temp)"],
        ["s{j} = nlr * g{j} + scale * F(normal_at(key_langevin, {j}))"],
        draws=("langevin",),
    ),
}
# torch's RMSprop, ca = 1 - alpha: plain, centred (m: the gradient's average), with momentum mu (q:
# the buffer), or both
_RMS_SQUARE = "vn{j} = alpha * v{j} + ca * g{j} * g{j}"
_RMS_PLAIN_D = "d{j} = math.sqrt(vn{j}) + eps"
_RMS_CENTRED_D = ["mn{j} = alpha * m{j} + ca * g{j}", "d{j} = math.sqrt(vn{j} - mn{j} * mn{j}) + eps"]
_RMS_MOMENTUM = ["qn{j} = mu * q{j} + g{j} / d{j}", "s{j} = nlr * qn{j}"]
_RMS_HYPER = ("lr", "alpha", "ca", "eps")
_RULES.update(
    {
        "rmsprop": _Rule(
            _RMS_HYPER, ("v",), ["nlr = -lr"], [_RMS_SQUARE, _RMS_PLAIN_D, "s{j} = nlr * g{j} / d{j}"]
        ),
        "rmsprop-centered": _Rule(
            _RMS_HYPER, ("v", "m"), ["nlr = -lr"], [_RMS_SQUARE, *_RMS_CENTRED_D, "s{j} = nlr * g{j} / d{j}"]
        ),
        "rmsprop-momentum": _Rule(
            (*_RMS_HYPER, "mu"), ("v", "q"), ["nlr = -lr"], [_RMS_SQUARE, _RMS_PLAIN_D, *_RMS_MOMENTUM]
        ),
        "rmsprop-centered-momentum": _Rule(
            (*_RMS_HYPER, "mu"),
            ("v", "m", "q"),
            ["nlr = -lr"],
            [_RMS_SQUARE, *_RMS_CENTRED_D, *_RMS_MOMENTUM],
        ),
    }
)
RULES = tuple(_RULES)
#: the gradient transforms a kernel applies before its rule, in the optimizer's order (``t`` the
#: transform's hyper-parameter, a row named t<index>): g <- g + t z (z from the "grad_noise" stream),
#: g <- g min(1, t / max(|g|, 1e-300)), g <- g + t x
TRANSFORMS = {
    "grad_noise": ["g{j} = g{j} + {t} * F(normal_at(key_grad_noise, {j}))"],
    "clip_norm": [
        "#NORM#",
        "{t}_f = {t} / (norm if norm > F(1e-300) else F(1e-300))",
        "g{j} = g{j} * ({t}_f if {t}_f < one else one)",
    ],
    "l2": ["g{j} = g{j} + {t} * x{j}"],
}
#: the per-particle values each rule's kernel takes, in the order of the rows of ``hyper``: lr,
#: beta (momentum), ba, ca, la = beta1, 1 - beta1, log beta1; bb, cb, lb the same of beta2; eps; wd
HYPER = {name: rule.hyper for name, rule in _RULES.items()}


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


#: per particle, the rows of ``state`` besides the coordinates' (x, g, u, the rule's state): the loss,
#: the stop step (-1: running), the running minimum of U and its step, settled (0 / 1) at the last
#: observation and since when, and the first steps of the events (-1: not yet)
SCALARS = ("E", "STOP", "LOW", "LOWK", "SET", "SINCE", "DIV", "LEFT", "CONV", "TGT")
_HOT = ("E", "STOP", "LOW", "LOWK", "SET")  # the scalar rows the hot loop reads
#: the largest step count whose step numbers a kernel of each float type stores exactly
MAX_STEPS = {"float32": 2**24, "float64": 2**53}


def layout(rule: str, dim: int, points: int = 0) -> dict[str, int]:
    """The row of ``state`` of each quantity: X0.., G0.., U0.. (the update; a rule whose update is
    its state m shares m's rows), the rule's state rows (M0.., V0.., A0..), ``SCALARS``, then with
    ``points`` known points for near events: NC (which points the particle is near: bit i for point
    i, as a float) and the first step near each (NEARP0, NEARP1, ...)."""
    spec = _RULES[rule]
    names = [f"{a}{j}" for a in ("X", "G") for j in range(dim)]
    if spec.update is None:
        names += [f"U{j}" for j in range(dim)]
    names += [f"{m.upper()}{j}" for m in spec.state for j in range(dim)]
    near = ["NC", *(f"NEARP{i}" for i in range(points))] if points else []
    rows = {name: r for r, name in enumerate(names + list(SCALARS) + near)}
    if spec.update is not None:
        rows.update({f"U{j}": rows[f"{spec.update.upper()}{j}"] for j in range(dim)})
    return rows


def _each(template: str, dim: int, indent: int, sep: str = "\n") -> str:
    pad = " " * indent
    return sep.join(pad + template.format(j=j) for j in range(dim))


def _names(prefix: str, dim: int) -> str:
    return ", ".join(f"{prefix}{j}" for j in range(dim))


def _indent(lines: list[str], pad: int) -> str:
    return "\n".join(" " * pad + line if line else "" for line in lines)


def _squared_distance(dim: int, i: int, position: str) -> str:
    """|x - p_i|^2 as torch's ``point_distances`` sums it, x_j given by ``position`` (a template)."""
    return " + ".join(
        f"({position.format(j=j)} - pc{i}_{j}) * ({position.format(j=j)} - pc{i}_{j})" for j in range(dim)
    )


def _near_code(dim: int, points: int, position: str) -> list[str]:
    """Lines setting ``nc`` to the sum of 2^i over the known points i within the capture radius of the
    position (squared distances against ``near_sq``, :func:`squared_threshold`)."""
    return ["nc = zero"] + [
        f"nc = nc + (F({float(2**i)!r}) if {_squared_distance(dim, i, position)} < near_sq else zero)"
        for i in range(points)
    ]


def _observe(dim: int, k: str, unbounded: bool, points: int = 0) -> list[str]:
    """Lines that observe a particle's finite state at step ``k`` (module docstring) and count it out
    of ``active`` when it stops; rows by name (``X0[p]``, ``DIV[p]``, ...), resolved by the caller.
    ``unbounded``: the landscape is unbounded below (leaving the box stops a particle); ``points``:
    the known points whose first visits it records (near events)."""
    sq = lambda p: " + ".join(f"{p}{j}[p] * {p}{j}[p]" for j in range(dim))  # noqa: E731
    outside = " or ".join(f"not (abs((X{j}[p] - c{j}) * b{j}) <= one)" for j in range(dim))
    return [
        f"settled = ({sq('G')} < grad_tol) and ({sq('U')} < step_tol)",
        "if settled:",
        "    if SET[p] == zero:",
        f"        SINCE[p] = {k}",
        "        SET[p] = one",
        "    if CONV[p] < zero:",
        f"        CONV[p] = {k}",
        "else:",
        "    SET[p] = zero",
        "ends = stop_converged and settled",
        "if E[p] <= target and TGT[p] < zero:",
        f"    TGT[p] = {k}",
        "    ends = ends or stop_target",
        *([f"if {outside}:", f"    LEFT[p] = {k}", "    ends = True"] if unbounded else []),
        *_near_lines(dim, k, points),
        "if ends:",
        f"    STOP[p] = {k}",
        "    active -= 1",
    ]


def _near_lines(dim: int, k: str, points: int) -> list[str]:
    """The observation's near events: the first step within the capture radius of each point."""
    lines = []
    for i in range(points):
        lines += [
            f"if {_squared_distance(dim, i, 'X{j}[p]')} < near_sq and NEARP{i}[p] < zero:",
            f"    NEARP{i}[p] = {k}",
        ]
    if points:
        lines += [*_near_code(dim, points, "X{j}[p]"), "NC[p] = nc"]
    return lines


def _resolve(source: str, rows: dict[str, str]) -> str:
    """Replace each ``NAME[p]`` of ``source`` by its place in ``rows``."""
    return re.sub(r"\b([A-Z]+\d*)\[p\]", lambda m: rows[m.group(1)], source)


_NORMAL_CALL = re.compile(r"normal_at\(key_(\w+), (\d+)\)")


def _shared_normals(lines: list[str]) -> list[str]:
    """With shared streams: the step's normals the ``lines`` use, each drawn once (``z_PURPOSE_J``)."""
    calls = dict.fromkeys(m.groups() for line in lines for m in _NORMAL_CALL.finditer(line))
    return [f"z_{purpose}_{j} = normal_at(key_{purpose}, {j})" for purpose, j in calls]


def _drawn_once(lines: list[str]) -> list[str]:
    """``lines`` reading the step's shared normals instead of drawing them."""
    return [_NORMAL_CALL.sub(r"z_\1_\2", line) for line in lines]


def hyper_names(rule: str, transforms: tuple[str, ...] = ()) -> tuple[str, ...]:
    """The per-particle values a kernel takes, in the order of the rows of ``hyper``: the rule's
    (``HYPER``), then one per transform (tr0, tr1, ...)."""
    return _RULES[rule].hyper + tuple(f"tr{n}" for n in range(len(transforms)))


def _expand(lines: list[str], dim: int) -> list[str]:
    """Each line with a ``{j}`` once per coordinate, the others once."""
    return [
        out for line in lines for out in ([line.format(j=j) for j in range(dim)] if "{j}" in line else [line])
    ]


def loop_source(
    rule: str,
    dim: int,
    flush: bool = False,
    unbounded: bool = False,
    transforms: tuple[str, ...] = (),
    scheduled: bool = False,
    points: int = 0,
    shared_streams: bool = False,
) -> str:
    """Source of ``start(...)`` and ``advance(...)`` for ``rule`` in dimension ``dim`` (they call
    ``value_and_grad``); ``flush``: FTZ/DAZ around each block (float32 kernels on x86); ``unbounded``:
    the landscape is unbounded below (the kernel checks the box every step); ``transforms``: the
    gradient transforms (``TRANSFORMS``) in order; ``scheduled``: step k's lr is lr factors[k - 1];
    ``points``: the number of known points whose first visits are recorded (near events; 0: none);
    ``shared_streams``: every particle draws particle 0's stream (`descent.spec`'s ``streams``), so
    a step's normals are drawn once per block, before its hot pass, not once per particle."""
    if rule not in RULES:
        raise ValueError(f"no kernel for the rule {rule!r}")
    if any(kind not in TRANSFORMS for kind in transforms):
        raise ValueError(f"no kernel for the transforms {transforms!r}")
    spec = _RULES[rule]
    hypers = hyper_names(rule, transforms)
    draws = set(spec.draws) | ({"grad_noise"} if "grad_noise" in transforms else set())
    prepare = ["lr = lr * fac"] if scheduled else []
    prepare += [f"graw{j} = g{j}" for j in range(dim)] if transforms else []
    stream = "0" if shared_streams else "first + p"
    keys = [
        f"key_{purpose} = counter_key(seed, PURPOSE_{purpose.upper()}, {stream}, k - 1)"
        for purpose in sorted(draws)
    ]
    prepare += [] if shared_streams else keys
    for n, kind in enumerate(transforms):
        norm = f"norm = math.sqrt({' + '.join(f'g{j} * g{j}' for j in range(dim))})"
        lines = [line.replace("#NORM#", norm).replace("{t}", f"tr{n}") for line in TRANSFORMS[kind]]
        prepare += _expand(lines, dim)
    rows = layout(rule, dim, points)
    xs, gs, ys, hs = _names("x", dim), _names("g", dim), _names("y", dim), _names("h", dim)
    sq = lambda p: " + ".join(f"{p}{j} * {p}{j}" for j in range(dim))  # noqa: E731
    far = " | ".join(f"(not (abs(({{v}}{j} - c{j}) * f{j}) <= one))" for j in range(dim))
    outside = " | ".join(f"(not (abs((y{j} - c{j}) * b{j}) <= one))" for j in range(dim))
    gmax = [f"gm = h{j} if ((h{j} > gm) | (h{j} != h{j})) else gm" for j in range(1, dim)]
    letters = {"X", "G", "U", *(m.upper() for m in spec.state)}
    coords = [name for name in rows if name.rstrip("0123456789") in letters]
    persistent = list(dict.fromkeys(coords))  # U aliases keep their own name; same row
    hot_rows = [n for n in persistent if rows[n] not in {rows[m] for m in persistent[: persistent.index(n)]}]
    hot_rows += list(_HOT) + (["NC"] if points else [])
    cold = [*SCALARS, *(f"NEARP{i}" for i in range(points))]
    hyper_rows = [h.upper() for h in hypers]
    local = hot_rows + ["RARE"] + hyper_rows + list(spec.rows)
    offset = {name: r * BLOCK for r, name in enumerate(local)}
    if spec.update is not None:
        offset.update({f"U{j}": offset[f"{spec.update.upper()}{j}"] for j in range(dim)})
    at_block = {name: f"S[{offset[name]} + p]" for name in offset}
    at_block.update({name: f"state[{rows[name]}, i]" for name in cold if name not in _HOT})
    at_state = {name: f"state[{r}, i]" for name, r in rows.items()}

    # --- start: state 0 of each particle ----------------------------------------------------------
    init = [f"state[{rows[f'X{j}']}, i] = starts[i, {j}]" for j in range(dim)]
    init += [f"state[{rows[f'G{j}']}, i] = g{j}" for j in range(dim)]
    zeroed = sorted({rows[n] for n in coords if n[0] not in "XG"})
    init += [f"state[{r}, i] = zero" for r in zeroed]
    init += [
        "E[p] = e", "LOW[p] = F(np.inf)", "LOWK[p] = F(-1.0)", "SET[p] = zero", "SINCE[p] = F(-1.0)",
        *(f"{name}[p] = F(-1.0)" for name in ("STOP", "DIV", "LEFT", "CONV", "TGT")),
        *(f"NEARP{i}[p] = F(-1.0)" for i in range(points)), *(["NC[p] = zero"] if points else []),
    ]  # fmt: skip
    start = f"""
def start(first, last, starts, state, center, far_inverse, box_inverse, grad_tol, step_tol, target,
          stop_converged, stop_target, centers, near_sq):
    one = F(1.0)
    zero = F(0.0)
{_each("c{j} = center[{j}]", dim, 4)}
{_each("f{j} = far_inverse[{j}]", dim, 4)}
{_each("b{j} = box_inverse[{j}]", dim, 4)}
{_indent([f"pc{i}_{j} = centers[{i}, {j}]" for i in range(points) for j in range(dim)], 4)}
    for i in range(first, last):
        active = 1
{_each("x{j} = starts[i, {j}]", dim, 8)}
        e, {gs} = value_and_grad({xs})
{_indent(init, 8)}
        gm = g0
{_indent([line.replace("h", "g") for line in gmax], 8)}
        if ({far.format(v="x")}) | (not math.isfinite(e + gm)):
            DIV[p] = zero
            STOP[p] = zero
        else:
            LOW[p] = e
            LOWK[p] = zero
{_indent(_observe(dim, "zero", unbounded, points), 12)}
"""
    start = _resolve(start, at_state)

    # --- advance: steps k0+1 .. k1 -----------------------------------------------------------------
    if spec.shared:  # is the block's value of each shared hyper-parameter the same?
        same = " & ".join(f"({h.upper()}[p] == {h}0)" for h in spec.shared)
        shared = ["p = 0", *(f"{h}0 = {h.upper()}[p]" for h in spec.shared), "shared = True"]
        shared += ["for p in range(count):", f"    shared = shared & {same}"]
    else:
        shared = []
    rule_lines = _expand(spec.lines, dim)
    step_draws = keys + _shared_normals([*prepare, *rule_lines]) if shared_streams else []
    if shared_streams:
        prepare, rule_lines = _drawn_once(prepare), _drawn_once(rule_lines)
    loads = [f"{h} = {h.upper()}[p]" for h in hypers]
    loads += [f"x{j} = X{j}[p]" for j in range(dim)] + [f"g{j} = G{j}[p]" for j in range(dim)]
    loads += [f"{m}{j} = {m.upper()}{j}[p]" for m in spec.state for j in range(dim)]
    if spec.update is None:
        loads += [f"u{j} = U{j}[p]" for j in range(dim)]
    loads += ["e = E[p]", "stop = STOP[p]", "low = LOW[p]", "low_k = LOWK[p]", "was = SET[p]"]
    keep = [f"X{j}[p] = y{j} if ok else x{j}" for j in range(dim)]
    raw = "graw" if transforms else "g"  # the transforms rebind g; a particle that stays keeps the raw g
    keep += [f"G{j}[p] = h{j} if ok else {raw}{j}" for j in range(dim)]
    if spec.update is None:
        keep += [f"U{j}[p] = s{j} if ok else u{j}" for j in range(dim)]
    keep += [f"{m.upper()}{j}[p] = {m}n{j} if ok else {m}{j}" for m in spec.state for j in range(dim)]
    hot = [
        *loads,
        *prepare,
        *spec.pre,
        *rule_lines,
        *(f"y{j} = x{j} + s{j}" for j in range(dim)),
        f"en, {hs} = value_and_grad({ys})",
        "gm = h0",
        *gmax,
        "live = stop < zero",
        f"bad = ({far.format(v='y')}) | (not math.isfinite(en + gm))",
        "ok = live & (not bad)",
        "gone = live & bad",
        *keep,
        "E[p] = en if ok else e",
        "lower = ok & (en < low)",
        "LOW[p] = en if lower else low",
        "LOWK[p] = kf if lower else low_k",
        f"settled = ({sq('h')} < grad_tol) & ({sq('s')} < step_tol)",
        # the first U <= target is a new minimum below it, from a minimum above it
        "first_hit = lower & (en <= target) & (low > target)",
        *(_near_code(dim, points, "y{j}") + ["first_hit = first_hit | (nc != NC[p])"] if points else []),
        f"change = ok & ((settled != (was > zero)) | first_hit{f' | {outside}' if unbounded else ''})",
        "RARE[p] = one if gone else (two if change else zero)",
        "flagged = flagged | gone | change",  # a bool: an int64 sum would halve float32 vectors
    ]
    cold = [
        "if RARE[p] == one:",
        "    DIV[p] = kf",
        "    STOP[p] = kf",
        "    active -= 1",
        "elif RARE[p] == two:",
        *("    " + line for line in _observe(dim, "kf", unbounded, points)),
    ]
    frame = [f"frames_x[f, i, {j}] = X{j}[p]" for j in range(dim)] + ["frames_e[f, i] = E[p]"]
    frame += [f"frames_u[f, i, {j}] = U{j}[p]" for j in range(dim)]
    # a snapshot of the hot rows for the probes (``snapshots[q]`` at the steps where snap[k] = q >= 0)
    snapshot = [f"snapshots[q, {rows[name]}, i] = {name}[p]" for name in hot_rows]

    def keep_step(step: str) -> list[str]:
        """Lines that keep the block's state at ``step``: its frame and its probes' snapshot, if due."""
        lines = []
        for index, due, kept in (("f", "every, marks", frame), ("q", "0, snap", snapshot)):
            lines += [f"{index} = frame_of({step}, {due})", f"if {index} >= 0:", "    for p in range(count):"]
            lines += ["        i = first + p", *("        " + line for line in kept)]
        return lines

    flush_on = ["saved = get_mxcsr()", "set_mxcsr(saved | FTZ_DAZ)"] if flush else []
    flush_off = ["set_mxcsr(saved)"] if flush else []
    advance = f"""
def advance(first_block, last_block, state, hyper, factors, seed, k0, k1, every, marks, frames_x,
            frames_e, frames_u, snap, snapshots, center, far_inverse, box_inverse, grad_tol, step_tol,
            target, stop_converged, stop_target, centers, near_sq):
    n = state.shape[1]
    one = F(1.0)
    zero = F(0.0)
    two = F(2.0)
    lanes = {BLOCK}
    each = hyper.shape[1] > 1
{_each("c{j} = center[{j}]", dim, 4)}
{_each("f{j} = far_inverse[{j}]", dim, 4)}
{_each("b{j} = box_inverse[{j}]", dim, 4)}
{_indent([f"pc{i}_{j} = centers[{i}, {j}]" for i in range(points) for j in range(dim)], 4)}
    for block in range(first_block, last_block):
{_indent(flush_on, 8)}
        first = block * {BLOCK}
        count = min(n, first + {BLOCK}) - first
        S = np.empty({len(local) * BLOCK}, F)
        active = 0
        for p in range(count):
            i = first + p
            column = i if each else 0
{_indent([f"S[{offset[name]} + p] = state[{rows[name]}, i]" for name in hot_rows], 12)}
{_indent([f"{h.upper()}[p] = hyper[{r}, column]" for r, h in enumerate(hypers)], 12)}
            if STOP[p] < zero:
                active += 1
        for p in range(count, lanes):  # lanes past the last particle: stopped, harmless numbers
{_indent([f"S[{offset[name]} + p] = zero" for name in hot_rows + hyper_rows if name != "STOP"], 12)}
            STOP[p] = zero
{_indent(shared, 8)}
        k = k0
        while k < k1 and active > 0:
            k += 1
            kf = F(k)
            flagged = False
{_indent(["fac = F(factors[k - 1])"] if scheduled else [], 12)}
{_indent(spec.block_pre, 12)}
{_indent(step_draws, 12)}
            # hot pass over all the block's lanes (a constant count: LLVM then knows the rows of S never
            # overlap and vectorises without run-time checks): straight-line, selects, no branches
            for p in range(lanes):
{_indent(hot, 16)}
            if flagged:  # cold pass: the particles whose events fired
                for p in range(count):
                    i = first + p
{_indent(cold, 20)}
{_indent(keep_step("k"), 12)}
        for later in range(k + 1, k1 + 1):  # a stopped block keeps its states in the chunk's later frames
{_indent(keep_step("later"), 12)}
        for p in range(count):
            i = first + p
{_indent([f"state[{rows[name]}, i] = S[{offset[name]} + p]" for name in hot_rows], 12)}
{_indent(flush_off, 8)}
"""
    advance = _resolve(advance, at_block)
    return _FRAME_OF + start + "\n" + advance


_FRAME_OF = """
def frame_of(k, every, marks):
    if k < marks.shape[0]:
        return marks[k]
    if every > 0 and k % every == 0:
        return k // every
    return -1

"""
