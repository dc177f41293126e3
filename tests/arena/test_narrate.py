"""The narrated step against independent references: the run's own trajectory, the landscape's
gradient, plain loops of torch.optim, and the closed forms on a quadratic formula."""

from __future__ import annotations

import math
import re

import pytest
import torch

from descent import DescentError, RunSpec, run_spec
from descent.arena.narrate import ball_spec, direction, narrate_spec, narrate_step
from descent.arena.state import PRESETS, default_state, normalize, state_specs
from descent.landscapes import get_landscape
from descent.optim import RULES
from descent.spec import resolve_landscape

START = [-1.2, 0.3]  # off both axes: every coordinate sees a gradient
STEPS = 40
KS = (0, 1, 7, STEPS - 1)


def ball(rule: str, landscape: str = "double-well", start=START, steps: int = STEPS, **hyper) -> dict:
    state = default_state()
    state.update(landscape=landscape, start=list(start), steps=steps)
    state["racers"] = [{"optimizer": rule, "hyper": hyper}]
    return normalize(state)


def reference_positions(state: dict) -> torch.Tensor:
    """The ball's positions from a run of its own: the torch loop, every step, no probes."""
    racer = state["racers"][0]
    spec = RunSpec(
        landscape=state["landscape"],
        landscape_params=dict(state["params"]),
        optimizer=racer["optimizer"],
        hyper=dict(racer["hyper"]),
        starts=[list(state["start"])],
        steps=state["steps"],
        seed=state["seed"],
        backend="torch",
    )
    return run_spec(spec).positions[:, 0, :]


def grad_u(landscape, point) -> torch.Tensor:
    x = torch.tensor([list(point)], dtype=torch.float64)
    return landscape.value_and_gradient(x)[1][0]


def vec(values) -> torch.Tensor:
    return torch.tensor(list(values), dtype=torch.float64)


@pytest.fixture(scope="module")
def well():
    return get_landscape("double-well")


# --- the parts are the update ---------------------------------------------------------------------------
VARIANTS = [(rule, {}) for rule in RULES] + [
    ("rmsprop", {"momentum": 0.5, "centered": 1.0}),
    ("adagrad", {"lr_decay": 0.1}),
    ("nesterov", {"momentum": 0.99}),
]


@pytest.mark.parametrize(("rule", "hyper"), VARIANTS, ids=lambda v: str(v))
def test_parts_add_up_to_the_runs_update_for_every_rule(rule, hyper, well):
    state = ball(rule, **hyper)
    positions = reference_positions(state)
    for k in KS:
        n = narrate_step(state, k)
        actual = positions[k + 1] - positions[k]
        total = sum((vec(p.vector) for p in n.parts), torch.zeros(2, dtype=torch.float64))
        assert torch.allclose(total, actual, rtol=0, atol=1e-12), (rule, k, n.parts)
        assert torch.allclose(vec(n.update), actual, rtol=0, atol=1e-12)
        assert torch.allclose(vec(n.before), positions[k], rtol=0, atol=1e-12)
        assert torch.allclose(vec(n.after), positions[k + 1], rtol=0, atol=1e-12)
        assert n.step == k and n.rule == rule and n.stopped is None


@pytest.mark.parametrize("rule", list(RULES))
def test_the_force_step_is_minus_lr_times_the_landscapes_gradient(rule, well):
    state = ball(rule)
    for k in (0, 5, 20):
        n = narrate_step(state, k)
        g = grad_u(well, n.before)
        lr = state["racers"][0]["hyper"].get("lr", n.lr)
        assert n.lr == pytest.approx(lr, rel=0, abs=0) or "lr" not in state["racers"][0]["hyper"]
        assert torch.allclose(vec(n.gradient), g, rtol=1e-13, atol=1e-13)
        assert torch.allclose(vec(n.part("force").vector), -n.lr * g, rtol=1e-13, atol=1e-14)


def test_momentums_inertia_is_beta_times_the_previous_update():
    state = ball("momentum", lr=0.02, momentum=0.9)
    positions = reference_positions(state)
    assert narrate_step(state, 0).part("inertia").length == 0  # it starts at rest
    for k in (1, 2, 10, 30):
        inertia = vec(narrate_step(state, k).part("inertia").vector)
        assert torch.allclose(inertia, 0.9 * (positions[k] - positions[k - 1]), rtol=0, atol=1e-12)


# --- the adaptive scale against torch.optim ---------------------------------------------------------------
TORCH = {  # (the rule, its hyper-parameters besides lr): torch.optim's optimizer
    ("adam", ()): lambda p, lr: torch.optim.Adam([p], lr=lr),
    ("amsgrad", ()): lambda p, lr: torch.optim.Adam([p], lr=lr, amsgrad=True),
    ("adagrad", ()): lambda p, lr: torch.optim.Adagrad([p], lr=lr),
    ("adagrad", (("lr_decay", 0.1),)): lambda p, lr: torch.optim.Adagrad([p], lr=lr, lr_decay=0.1),
    ("rmsprop", ()): lambda p, lr: torch.optim.RMSprop([p], lr=lr),
    ("rmsprop", (("centered", 1.0), ("momentum", 0.5))): lambda p, lr: torch.optim.RMSprop(
        [p], lr=lr, centered=True, momentum=0.5
    ),
}


def torch_effective_lr(rule: str, optimizer, param, lr: float) -> torch.Tensor:
    """lr/(sqrt(v_hat)+eps) from torch's own state after its step."""
    state, group = optimizer.state[param], optimizer.param_groups[0]
    if rule == "adagrad":
        clr = lr / (1 + (float(state["step"]) - 1) * group["lr_decay"])
        return clr / (state["sum"].sqrt() + group["eps"])
    if rule == "rmsprop":
        square = state["square_avg"]
        if group["centered"]:
            square = square - state["grad_avg"] ** 2
        return lr / (square.sqrt() + group["eps"])
    t = float(state["step"])
    second = state["max_exp_avg_sq"] if rule == "amsgrad" else state["exp_avg_sq"]
    return lr / ((second / (1 - group["betas"][1] ** t)).sqrt() + group["eps"])


@pytest.mark.parametrize(("rule", "hyper"), list(TORCH), ids=lambda v: str(v))
def test_the_effective_lr_equals_a_plain_torch_optim_loop(rule, hyper, well):
    lr = 0.03
    state = ball(rule, lr=lr, **dict(hyper))
    for k in (0, 4, 19):
        param = torch.tensor(START, dtype=torch.float64, requires_grad=True)
        optimizer = TORCH[rule, hyper](param, lr)
        for _ in range(k + 1):
            optimizer.zero_grad()
            param.grad = grad_u(well, param.detach().tolist()).clone()
            optimizer.step()
        n = narrate_step(state, k)
        expected = torch_effective_lr(rule, optimizer, param, lr)
        assert torch.allclose(vec(n.effective_lr), expected, rtol=1e-10, atol=0), (rule, k)
        assert torch.allclose(vec(n.after), param.detach(), rtol=0, atol=1e-10)
        assert n.gradient_seen == (True, True)
        assert n.effective_lr_formula in " ".join(n.sentences)


def test_a_coordinate_with_no_gradient_yet_is_said_so():
    n = narrate_step(ball("adam", start=[-1.2, 0.0], lr=0.03), 3)
    assert n.gradient_seen == (True, False)
    assert "no gradient there yet" in " ".join(n.sentences)
    assert "seen no gradient yet" in n.theory_sentences[-1] and "raise it" not in n.theory_sentences[-1]


# --- the other parts ---------------------------------------------------------------------------------------
def test_nesterovs_look_ahead_point_its_gradient_and_its_correction(well):
    state = ball("nesterov", lr=0.02, momentum=0.9)
    n = narrate_step(state, 6)
    inertia, correction = vec(n.part("inertia").vector), vec(n.part("lookahead").vector)
    assert torch.allclose(vec(n.lookahead), vec(n.before) + inertia, rtol=0, atol=1e-14)
    assert torch.allclose(vec(n.lookahead_gradient), grad_u(well, n.lookahead), rtol=1e-13, atol=1e-13)
    # torch's form: w <- w - lr (g + beta b), b <- beta b + g: beyond the coast, -lr beta g
    g = grad_u(well, n.before)
    assert torch.allclose(correction, -0.02 * 0.9 * g, rtol=1e-10, atol=1e-14)
    arrows = n.arrows()
    assert arrows["lookahead_point"][1] == pytest.approx(n.part("inertia").vector, abs=1e-14)
    assert arrows["lookahead_force"][0] == n.lookahead
    assert "look-ahead point" in " ".join(n.sentences)


def test_langevins_kick_is_the_update_beyond_the_force():
    state = ball("langevin", lr=0.02, temperature=0.5)
    positions = reference_positions(state)
    n = narrate_step(state, 3)
    kick = vec(n.part("kick").vector)
    expected = positions[4] - positions[3] - vec(n.part("force").vector)
    assert torch.allclose(kick, expected, rtol=0, atol=1e-12) and kick.norm() > 0
    assert f"{kick.norm():.3g}" in " ".join(n.sentences) and "T = 0.5" in " ".join(n.sentences)


def test_adamws_decoupled_decay_is_minus_lr_wd_w():
    n = narrate_step(ball("adamw", lr=0.03, weight_decay=0.1), 5)
    assert torch.allclose(vec(n.part("weight_decay").vector), -0.03 * 0.1 * vec(n.before), rtol=1e-15, atol=0)


def test_clipping_is_its_own_part(well):
    spec = RunSpec(
        optimizer="gd",
        hyper={"lr": 0.05},
        starts=[START],
        steps=10,
        transforms=[{"kind": "clip_norm", "max_norm": 0.5}],
    )
    reference = run_spec(spec.with_(backend="torch")).positions[:, 0, :]
    n = narrate_spec(spec, 2)
    g = grad_u(well, n.before)
    clipped = g * min(1.0, 0.5 / float(g.norm()))
    assert torch.allclose(vec(n.part("force").vector), -0.05 * g, rtol=1e-13, atol=1e-14)
    assert torch.allclose(vec(n.part("transforms").vector), -0.05 * (clipped - g), rtol=1e-12, atol=1e-14)
    total = sum((vec(p.vector) for p in n.parts), torch.zeros(2, dtype=torch.float64))
    assert torch.allclose(total, reference[3] - reference[2], rtol=0, atol=1e-12)
    assert "clipping" in " ".join(n.sentences)


# --- arrows ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("rule", ["gd", "momentum", "adam", "langevin"])
def test_the_arrows_chain_from_w_k_to_w_k1(rule):
    n = narrate_step(ball(rule), 4)
    arrows = n.arrows()
    tip = vec(n.before)
    for part in n.parts:
        origin, vector = arrows[part.name]
        assert torch.allclose(vec(origin), tip, rtol=0, atol=1e-15)
        tip = tip + vec(vector)
    assert torch.allclose(tip, vec(n.after), rtol=0, atol=1e-12)
    assert arrows["update"] == (n.before, n.update)


# --- words -------------------------------------------------------------------------------------------------
def test_the_sentences_hold_the_steps_numbers_and_turn_with_their_sign():
    formula = "(x**2 - 1)**2 + y**2"  # symmetric in x: a mirrored start is the mirrored run
    landscape = resolve_landscape(formula)
    told = {}
    for side in (-1.0, 1.0):
        n = narrate_step(
            ball("momentum", landscape=formula, start=[0.6 * side, 0.0], lr=0.02, momentum=0.9), 1
        )
        text = " ".join(n.sentences)
        g = grad_u(landscape, n.before)
        assert f"force {float(g.norm()):.3g}" in text
        assert f"would move it {0.02 * float(g.norm()):.3g}" in text
        assert f"carries 0.9 of last step's velocity ({n.part('inertia').length:.3g}" in text
        assert f"moves {math.hypot(*n.update):.3g}" in text
        told[side] = (text, g)
    # the mirror start pushes the other way, with the same numbers
    left, right = told[-1.0][0], told[1.0][0]
    assert left != right
    for text, g in told.values():
        push = "left" if g[0] > 0 else "right"
        assert f"pushes the ball {push}" in text
    assert left.replace("left", "?").replace("right", "left").replace("?", "right").replace("-", "") == (
        right.replace("-", "")
    )


BOWL = "x**2 + 3*y**2"  # its minimum at the origin: a ball started there has no step to take
ODD = re.compile(r"\b0 (nowhere|right|left|up|down)\b|nowhere|None|nan|\s[,.]|\.\.|  |moves 0(?![.\d])")


def reads_well(sentence: str) -> bool:
    """One sentence as a reader writes it: a capital first, one full stop last, no "0 nowhere"."""
    return sentence[:1].isupper() and sentence.endswith(".") and ODD.search(sentence) is None


@pytest.mark.parametrize("rule", sorted(RULES))
@pytest.mark.parametrize(
    ("start", "lr", "moves"),
    [((0.0, 0.0), 0.01, False), ((1e-150, -1e-150), 0.01, True), ((-3.0, 2.0), 0.01, True),
     ((2.0, -2.0), 10.0, True)],
    ids=["zero", "tiny", "negative", "huge"],
)  # fmt: skip
def test_every_sentence_reads_well_for_a_zero_tiny_negative_or_huge_step(rule, start, lr, moves):
    hyper = {"temperature": 0.0} if rule == "langevin" else {}
    n = narrate_step(ball(rule, landscape=BOWL, start=start, steps=3, lr=lr, **hyper), 0)
    for sentence in (*n.sentences, *n.theory_sentences):
        assert reads_well(sentence), sentence
    text = " ".join(n.sentences)
    assert ("does not move at all" in text) is (not moves and n.stopped is None), text
    if not moves:
        assert math.hypot(*n.update) == 0 and "stays at (0, 0)" in text


def test_directions_name_the_maps_axes():
    assert direction((1.0, 0.0)) == "right" and direction((-1.0, 0.05)) == "left"
    assert direction((0.0, 2.0)) == "up" and direction((0.1, -1.0)) == "down"
    assert direction((-1.0, 1.0)) == "left and up" and direction((0.0, 0.0)) == "nowhere"


def test_a_formula_landscape_reads_its_curvature_and_edge():
    formula = "x**2 + 3*y**2"
    state = ball("gd", landscape=formula, start=[1.0, 1.0], lr=0.05)
    n = narrate_step(state, 0)
    landscape = resolve_landscape(formula)
    assert torch.allclose(vec(n.gradient), grad_u(landscape, (1.0, 1.0)), rtol=1e-13, atol=0)
    assert n.theory["lam_min"] == pytest.approx(2.0) and n.theory["lam_max"] == pytest.approx(6.0)
    assert n.theory["kappa"] == pytest.approx(3.0) and n.theory["edge"] == pytest.approx(2 / 6)
    theory = " ".join(n.theory_sentences)
    assert "steepest curvature" in theory and "is 6, its flattest 2" in theory
    assert "condition number, is 3" in theory and "mildly stretched" in theory
    assert f"lr = {2 / 6:.3g}" in theory and f"is {(2 / 6) / 0.05:.3g}x below the edge: safe" in theory
    positions = reference_positions(state)
    assert vec(n.update) == pytest.approx(positions[1] - positions[0], abs=1e-12)


@pytest.mark.parametrize(
    ("lr", "says"),
    [(0.05, "4x below the edge: safe; you could raise it"), (0.15, "at 75% of the edge"),
     (0.19, "just below it (95%)"), (0.21, "1.05x the edge: unstable")],
)  # fmt: skip
def test_the_advice_follows_lr_over_the_edge(lr, says):
    state = {**PRESETS["Too large a step"][0], "racers": [{"optimizer": "gd", "hyper": {"lr": lr}}]}
    n = narrate_step(normalize(state), 0)
    assert n.theory["edge"] == pytest.approx(0.2)  # 2/lambda_max on the kappa = 10 quadratic
    assert says in n.theory_sentences[-1]


def test_momentum_zero_and_a_flat_direction_are_said_as_such():
    n = narrate_step(normalize(PRESETS["Plateau: crawl"][0]), 140)  # momentum 0 on the plateau
    assert "With β = 0 it carries no velocity" in " ".join(n.sentences)
    assert n.theory["shape"] == "flat-bowl" and n.theory["kappa"] is None
    assert "flat in one direction (curvature about 0)" in n.theory_sentences[0]


def test_a_saddle_is_said_to_have_no_condition_number():
    n = narrate_step(ball("gd", landscape="x**2 - y**2", start=[0.5, 0.1], lr=0.05), 0)
    assert n.theory["shape"] == "saddle" and n.theory["kappa"] is None
    assert "saddle" in n.theory_sentences[0] and "no finite condition number" in n.theory_sentences[0]


def test_a_saddle_is_never_called_stable_whatever_the_lr():
    n = narrate_step(ball("gd", landscape="x**2 - y**2", start=[0.5, 0.1], lr=0.05), 0)
    edge = n.theory_sentences[-1]
    assert n.theory["ratio"] < 0.5  # far below the edge of the upward curve, and still unstable
    assert "unstable along the downhill direction" in edge and "safe" not in edge, edge


@pytest.mark.parametrize(
    ("stretch", "words"),
    [(1.5, "nearly round"), (4.4, "mildly stretched"), (30.0, "stretched"), (300.0, "a narrow valley")],
)
def test_the_condition_number_is_said_in_words_that_match_it(stretch, words):
    n = narrate_step(ball("gd", landscape=f"x**2 + {stretch}*y**2", start=[1.0, 1.0], lr=0.01), 0)
    assert n.theory["kappa"] == pytest.approx(stretch)
    assert f"the valley is {words}" in n.theory_sentences[1], n.theory_sentences[1]


def test_a_numerically_zero_curvature_reads_zero_on_the_plateau():
    state = normalize(PRESETS["Plateau: crawl"][0])
    spec, landscape = ball_spec(state)
    point = torch.tensor(
        run_spec(spec, landscape=landscape).positions[140, 0, :].tolist(), dtype=torch.float64
    )
    exact = torch.linalg.eigvalsh(
        torch.autograd.functional.hessian(lambda w: landscape.value(w[None])[0], point)
    )
    assert abs(float(exact[0])) <= 1e-8 * max(1.0, float(exact.abs().max()))  # zero up to rounding
    n = narrate_step(state, 140)
    assert n.theory["lam_min"] == 0.0 and n.theory["lam_max"] == pytest.approx(float(exact[1]), rel=1e-9)


def test_the_step_the_run_stopped_at_is_told_and_the_next_refused():
    state = normalize(PRESETS["Too large a step"][0])
    spec, landscape = ball_spec(state)
    last = int(run_spec(spec, landscape=landscape).steps_run)
    n = narrate_step(state, last - 1)
    assert n.stopped == "diverged" and n.after == n.before
    assert "stopped the ball" in " ".join(n.sentences)
    with pytest.raises(DescentError, match=r"invalid k="):
        narrate_step(state, last)


# --- bad steps, and the page's run reused -------------------------------------------------------------
@pytest.mark.parametrize("k", [-1, STEPS, 10**9, 1.5, True, "3", None])
def test_a_bad_k_is_one_line_naming_it(k):
    with pytest.raises(DescentError) as error:
        narrate_step(ball("gd"), k)
    assert error.value.parameter == "k" and "\n" not in str(error.value)
    assert f"[0, {STEPS - 1}]" in str(error.value)


def test_the_ball_is_the_pages_run_when_it_saves_every_step():
    state = normalize({**default_state(), "racers": [*default_state()["racers"], {"optimizer": "gd"}]})
    spec, landscape = ball_spec(state)
    page = state_specs(state, [float(v) for v in landscape.start().squeeze(0).tolist()])[0]
    assert spec == page  # the page's cached run serves the narration
    long = normalize({**default_state(), "steps": 5000})
    spec, _ = ball_spec(long)
    assert spec.save == "every:1" and all(p["every"] == 1 for p in spec.probes)
    assert narrate_step(long, 4321).step == 4321
