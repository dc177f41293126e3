"""Source of the step loop of one (expression, rule, dtype): each particle's state in local variables.

For particle i (blocks of ``BLOCK`` particles run in parallel, ``prange``), with x, U, g, the last
update u and the rule's state m held in scalars x0..x{d-1}, e, g0.., u0.., m0..:

    state 0: diverged if not finite or beyond the widened box, else its events
    for k = 0, 1, ... while the particle has not stopped:
        s, m' = rule(g, m)            gd: s = -lr g
                                      momentum: m' = beta m - lr g, s = m'
                                      nesterov: m' = beta m + g, s = -lr (g + beta m')
        U', g' = value_and_grad(x + s)
        diverged at k + 1 (frozen at its last finite state) if the new state is bad,
        else x, U, g, u, m = x + s, U', g', s, m' and the events of state k + 1
        a frame every ``every`` steps (0: the start only)

The events are those of :mod:`descent.dynamics.events` with the same thresholds: ``diverged``
(beyond the box widened by ``diverge_spans`` box sizes, or U + max_j g_j not finite), ``left_box``
(landscapes unbounded below; it stops the particle), ``converged`` (|g| < grad_tol and |u| <
step_tol), ``target`` (U <= target_loss), the running minimum of U and the last step the particle
was moving and not converged. ``converged`` and ``target`` stop it only when asked.
"""

from __future__ import annotations

BLOCK = 256
RULES = ("gd", "momentum", "nesterov")

_RULE_LINES = {
    "gd": ["s{j} = nlr * g{j}", "n{j} = m{j}"],
    "momentum": ["n{j} = beta * m{j} - lr * g{j}", "s{j} = n{j}"],
    "nesterov": ["n{j} = beta * m{j} + g{j}", "s{j} = nlr * (g{j} + beta * n{j})"],
}


def _each(template: str, dim: int, indent: int, sep: str = "\n") -> str:
    pad = " " * indent
    return sep.join(pad + template.format(j=j) for j in range(dim))


def _names(prefix: str, dim: int) -> str:
    return ", ".join(f"{prefix}{j}" for j in range(dim))


def loop_source(rule: str, dim: int) -> str:
    """Source of ``run(...)`` for ``rule`` in dimension ``dim`` (it calls ``value_and_grad``)."""
    if rule not in RULES:
        raise ValueError(f"no kernel for the rule {rule!r}")
    xs, gs, xn, gn = _names("x", dim), _names("g", dim), _names("y", dim), _names("h", dim)
    sq = lambda p: " + ".join(f"{p}{j} * {p}{j}" for j in range(dim))  # noqa: E731
    far = " or ".join(f"not (abs((y{j} - c{j}) * f{j}) <= F(1.0))" for j in range(dim))
    outside = " or ".join(f"not (abs((x{j} - c{j}) * b{j}) <= F(1.0))" for j in range(dim))
    gmax = "\n".join(f"{' ' * 16}if h{j} > gm or h{j} != h{j}:\n{' ' * 20}gm = h{j}" for j in range(1, dim))
    rule_lines = "\n".join(_each(line, dim, 16) for line in _RULE_LINES[rule])
    observe = f"""
                if math.sqrt({sq("g")}) < grad_tol and math.sqrt({sq("u")}) < step_tol:
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
    save = f"""
                if every > 0 and k % every == 0:
                    f = k // every
{_each("frames_x[f, i, {j}] = x{j}", dim, 20)}
                    frames_e[f, i] = e
{_each("frames_u[f, i, {j}] = u{j}", dim, 20)}"""
    return f"""
def run(starts, lrs, betas, steps, every, center, far_inverse, box_inverse, grad_tol, step_tol,
        target, has_target, stop_converged, stop_target, unbounded,
        frames_x, frames_e, frames_u, final_x, final_e, final_g, final_u,
        diverged, left_box, converged, reached, unsettled, min_loss, min_step, stop_step):
    n = starts.shape[0]
    n_frames = frames_e.shape[0]
{_each("c{j} = center[{j}]", dim, 4)}
{_each("f{j} = far_inverse[{j}]", dim, 4)}
{_each("b{j} = box_inverse[{j}]", dim, 4)}
    for block in prange((n + {BLOCK} - 1) // {BLOCK}):
        for i in range(block * {BLOCK}, min(n, (block + 1) * {BLOCK})):
            lr = lrs[i]
            nlr = -lr
            beta = betas[i]
{_each("x{j} = starts[i, {j}]", dim, 12)}
            e, {gs} = value_and_grad({xs})
{_each("u{j} = F(0.0)", dim, 12)}
{_each("m{j} = F(0.0)", dim, 12)}
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
            for _ in range(1):  # state 0
                gm = h0
{gmax}
                if {far} or not math.isfinite(en + gm):
                    div = 0
                    stop = 0
                    break
{observe}
{_each("frames_x[0, i, {j}] = x{j}", dim, 12)}
            frames_e[0, i] = e
{_each("frames_u[0, i, {j}] = u{j}", dim, 12)}
            while k < steps and stop < 0:
{rule_lines}
{_each("y{j} = x{j} + s{j}", dim, 16)}
                en, {gn} = value_and_grad({xn})
                k += 1
                gm = h0
{gmax}
                if {far} or not math.isfinite(en + gm):
                    div = k
                    stop = k
                else:
{_each("x{j} = y{j}", dim, 20)}
                    e = en
{_each("g{j} = h{j}", dim, 20)}
{_each("u{j} = s{j}", dim, 20)}
{_each("m{j} = n{j}", dim, 20)}
{observe.replace(chr(10) + " " * 16, chr(10) + " " * 20)}
{save}
            if every > 0:  # a stopped particle keeps its state in the frames still to come
                for f in range(k // every + 1, n_frames):
{_each("frames_x[f, i, {j}] = x{j}", dim, 20)}
                    frames_e[f, i] = e
{_each("frames_u[f, i, {j}] = u{j}", dim, 20)}
{_each("final_x[i, {j}] = x{j}", dim, 12)}
            final_e[i] = e
{_each("final_g[i, {j}] = g{j}", dim, 12)}
{_each("final_u[i, {j}] = u{j}", dim, 12)}
            diverged[i] = div
            left_box[i] = left
            converged[i] = conv
            reached[i] = tgt
            unsettled[i] = unset
            min_loss[i] = low
            min_step[i] = low_k
            stop_step[i] = stop
"""
