"""Learning-rate schedules: each kind against its closed form, composition, dict round-trip, the CLI
string form and its errors."""

from __future__ import annotations

import json
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from descent._errors import DescentError
from descent.optim import (
    Constant,
    Cosine,
    Exponential,
    Optimizer,
    Product,
    Sequence,
    Step,
    Warmup,
    parse_schedule,
    schedule_from_dict,
    schedule_to_dict,
)

torch.set_num_threads(1)

K = range(0, 400)


def test_constant() -> None:
    assert all(Constant()(k) == 1.0 for k in K)


@pytest.mark.parametrize(("every", "gamma"), [(1, 0.5), (7, 0.1), (100, 2.0)])
def test_step(every: int, gamma: float) -> None:
    schedule = Step(every=every, gamma=gamma)
    for k in K:
        assert schedule(k) == gamma ** math.floor(k / every)
    assert schedule(every - 1) == 1.0 and schedule(every) == gamma


@pytest.mark.parametrize("gamma", [0.5, 0.99, 1.01])
def test_exponential(gamma: float) -> None:
    schedule = Exponential(gamma)
    for k in K:
        assert schedule(k) == pytest.approx(math.exp(k * math.log(gamma)), rel=1e-12)


def test_growing_factors_overflow_to_inf_not_an_exception() -> None:
    """gamma > 1 over many steps: the factor is inf (the run then diverges) rather than OverflowError."""
    assert Exponential(10.0)(400) == math.inf
    assert Step(every=1, gamma=10.0)(400) == math.inf
    assert Exponential(0.5)(5000) == 0.0


@pytest.mark.parametrize(("total", "final"), [(1, 0.0), (90, 0.0), (250, 0.1), (100, 1.0)])
def test_cosine(total: int, final: float) -> None:
    schedule = Cosine(total=total, final=final)
    for k in K:
        progress = min(k, total) / total
        assert schedule(k) == pytest.approx(
            final + (1 - final) * (1 + math.cos(math.pi * progress)) / 2, rel=1e-14, abs=1e-15
        )
    assert schedule(0) == 1.0
    assert schedule(total) == pytest.approx(final, abs=1e-15) and schedule(10 * total) == schedule(total)
    if total % 2 == 0:
        assert schedule(total // 2) == pytest.approx((1 + final) / 2, rel=1e-14)


def test_warmup_alone() -> None:
    schedule = Warmup(steps=10)
    for k in K:
        assert schedule(k) == ((k + 1) / 10 if k < 10 else 1.0)


def test_sequence_and_product() -> None:
    sequence = Sequence((Constant(), Exponential(0.5), Step(every=3, gamma=0.1)), (5, 4))
    for k in K:
        if k < 5:
            expected = 1.0
        elif k < 9:
            expected = 0.5 ** (k - 5)
        else:
            expected = 0.1 ** ((k - 9) // 3)
        assert sequence(k) == pytest.approx(expected, rel=1e-14)
    product = Product((Exponential(0.9), Cosine(total=200)))
    for k in K:
        assert product(k) == pytest.approx(0.9**k * Cosine(total=200)(k), rel=1e-14, abs=1e-300)
    assert Product(())(3) == 1.0


@pytest.mark.parametrize("build", ["object", "string", "dict"])
def test_warmup_then_cosine(build: str) -> None:
    """Linear warm-up over 20 steps, then a cosine from 1 to 0.1 over 180: the closed form."""
    schedule = {
        "object": lambda: Warmup(20, Cosine(total=180, final=0.1)),
        "string": lambda: parse_schedule("warmup:steps=20 > cosine:total=180,final=0.1"),
        "dict": lambda: schedule_from_dict(
            {"kind": "warmup", "steps": 20, "then": {"kind": "cosine", "total": 180, "final": 0.1}}
        ),
    }[build]()

    def closed_form(k: int) -> float:
        if k < 20:
            return (k + 1) / 20
        return 0.1 + 0.9 * (1 + math.cos(math.pi * min(k - 20, 180) / 180)) / 2

    for k in K:
        assert schedule(k) == pytest.approx(closed_form(k), rel=1e-14, abs=1e-15)
    # continuous at the hand-over: the last warm-up step and the first cosine step are both 1
    assert schedule(19) == 1.0 and schedule(20) == 1.0
    # the optimizer's lr of step k is lr * factor(k)
    opt = Optimizer.build("gd", lr=0.3, schedule=schedule)
    for k in (0, 5, 19, 20, 110, 200, 399):
        assert opt.lr_at(k) == 0.3 * schedule(k)
    lrs = Optimizer.build("gd", lr=torch.tensor([0.1, 0.2], dtype=torch.float64), schedule=schedule).lr_at(50)
    torch.testing.assert_close(lrs, torch.tensor([0.1, 0.2], dtype=torch.float64) * closed_form(50))


# --- dict round trip --------------------------------------------------------------------------
counts = st.integers(min_value=1, max_value=10_000)
positive = st.floats(min_value=1e-6, max_value=10.0, allow_nan=False, allow_infinity=False)
unit = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)
leaves = st.one_of(
    st.just(Constant()),
    st.builds(Step, every=counts, gamma=positive),
    st.builds(Exponential, gamma=positive),
    st.builds(Cosine, total=counts, final=unit),
)


def _compose(children: st.SearchStrategy) -> st.SearchStrategy:
    parts = st.lists(children, min_size=1, max_size=3).map(tuple)
    sequences = parts.flatmap(
        lambda ps: st.lists(counts, min_size=len(ps) - 1, max_size=len(ps) - 1).map(
            lambda lengths: Sequence(ps, tuple(lengths))
        )
    )
    return st.one_of(st.builds(Warmup, steps=counts, then=children), sequences, parts.map(Product))


schedules = st.recursive(leaves, _compose, max_leaves=6)


@settings(max_examples=150, deadline=None)
@given(schedule=schedules, k=st.integers(min_value=0, max_value=30_000))
def test_dict_round_trip(schedule, k: int) -> None:
    """to_dict -> JSON -> from_dict gives an equal schedule with the same factors."""
    spec = schedule_to_dict(schedule)
    again = schedule_from_dict(json.loads(json.dumps(spec)))
    assert again == schedule
    assert schedule_to_dict(again) == spec
    a, b = again(k), schedule(k)
    assert a == b or (math.isnan(a) and math.isnan(b))  # inf * 0 in a product of schedules is nan for both


def test_none_is_constant() -> None:
    assert schedule_from_dict(None) == Constant()
    assert isinstance(Optimizer.build("gd").schedule, Constant)


# --- the string form --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("constant", Constant()),
        ("step:every=100,gamma=0.5", Step(100, 0.5)),
        (" step : every = 3 , gamma = 0.25 ", Step(3, 0.25)),
        ("exponential:gamma=0.99", Exponential(0.99)),
        ("cosine:total=1000,final=0.1", Cosine(1000, 0.1)),
        ("cosine", Cosine()),
        ("warmup:steps=100", Warmup(100)),
        ("warmup:steps=100>cosine:total=900", Warmup(100, Cosine(900))),
        ("constant:for=10>exponential:gamma=0.9", Sequence((Constant(), Exponential(0.9)), (10,))),
        (
            "warmup:steps=5,for=5>constant:for=20>step:every=10,gamma=0.5",
            Sequence((Warmup(5), Constant(), Step(10, 0.5)), (5, 20)),
        ),
        ("step:every=1e2", Step(100)),
    ],
)
def test_parse_schedule(text: str, expected) -> None:
    schedule = parse_schedule(text)
    assert schedule == expected
    assert isinstance(getattr(schedule, "every", 1), int) and isinstance(getattr(schedule, "total", 1), int)


def test_parse_schedule_docstring_example() -> None:
    assert parse_schedule("step:every=100,gamma=0.5")(250) == 0.25


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("", ["schedule", "''", "constant"]),
        ("linear:steps=10", ["schedule kind", "'linear'", "cosine"]),
        ("sequence", ["schedule kind", "'sequence'", "warmup"]),
        ("step:every", ["schedule step", "'every'", "key=value"]),
        ("step:every=abc", ["schedule step.every", "'abc'", "finite number"]),
        ("step:every=0", ["step.every", "0", "integer >= 1"]),
        ("step:every=2.5", ["step.every", "2.5", "integer >= 1"]),
        ("step:gamma=-1", ["step.gamma", "-1", "(0.0, inf)"]),
        ("exponential:gamma=nan", ["exponential.gamma", "nan", "finite number"]),
        ("cosine:final=2", ["cosine.final", "2", "[0.0, 1.0]"]),
        ("cosine:total=0", ["cosine.total", "0", "integer >= 1"]),
        ("warmup:steps=0", ["warmup.steps", "0", "integer >= 1"]),
        ("step:bogus=1", ["schedule step", "bogus", "fields of Step"]),
        ("constant>cosine", ["schedule", "constant>cosine", "for=STEPS"]),
        ("constant:for=2.5>cosine", ["constant.for", "2.5", "integer >= 1"]),
        ("constant:for=0>cosine", ["constant.for", "0", "integer >= 1"]),
    ],
)
def test_parse_schedule_errors(text: str, names: list[str]) -> None:
    with pytest.raises(DescentError) as info:
        parse_schedule(text)
    message = str(info.value)
    for name in names:
        assert name in message, (name, message)


@pytest.mark.parametrize(
    ("spec", "names"),
    [
        ("cosine", ["schedule", "'cosine'", "'kind'"]),
        ({"kind": "linear"}, ["schedule", "linear", "'kind' one of"]),
        ({"every": 3}, ["schedule", "'kind' one of"]),
        ({"kind": "step", "every": 3, "bogus": 1}, ["schedule step", "bogus", "fields of Step"]),
        ({"kind": "step", "every": "abc"}, ["step.every", "'abc'", "integer >= 1"]),
        ({"kind": "warmup", "steps": "x"}, ["warmup.steps", "'x'", "integer >= 1"]),
        (
            {"kind": "sequence", "parts": [{"kind": "constant"}] * 2, "lengths": []},
            ["sequence.lengths", "1 lengths"],
        ),
        (
            {"kind": "sequence", "parts": [{"kind": "constant"}] * 2, "lengths": [0]},
            ["sequence.lengths", "0"],
        ),
        ({"kind": "warmup", "steps": 5, "then": {"kind": "nope"}}, ["schedule", "nope"]),
    ],
)
def test_schedule_from_dict_errors(spec, names: list[str]) -> None:
    with pytest.raises(DescentError) as info:
        schedule_from_dict(spec)
    message = str(info.value)
    for name in names:
        assert name in message, (name, message)


def test_bad_schedule_fails_at_optimizer_construction() -> None:
    with pytest.raises(DescentError, match="cosine.final"):
        Optimizer.build("gd", lr=0.1, schedule={"kind": "cosine", "final": -0.5})
