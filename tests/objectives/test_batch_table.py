"""The batch-table experiment's measurements: the batch-gradient variance formulas against a brute-force
enumeration of every batch on a tiny data set, the sampler's estimate against the same enumeration, and
the quick run's rows recomputed independently (steps to the target from a replayed spec and a plain
model, the temperature and timing arithmetic), whichever way its verdict falls."""

import itertools
import json
import math

import pytest
import torch

from descent.experiments import batch_table
from descent.experiments._base import Result, dumps
from descent.experiments.figures import MIN_FONT_PT, WIDTH_IN, text_sizes
from descent.objectives import digits_mlp, network_objective
from descent.spec import RunSpec, run_spec
from descent.train import build_model, set_flat_parameters

torch.set_num_threads(1)
TINY = 7


@pytest.fixture(scope="module")
def tiny():
    """A softmax regression on 7 examples: its per-example gradients ``[7, 8]``."""
    generator = torch.Generator().manual_seed(0)
    inputs = torch.randn(TINY, 3, generator=generator, dtype=torch.float64)
    targets = torch.tensor([0, 1, 0, 1, 1, 0, 1])
    net = network_objective(torch.nn.Linear(3, 2, dtype=torch.float64), inputs, targets)
    w = torch.randn(net.dim, generator=generator, dtype=torch.float64)
    return net, w, batch_table.per_example_gradients(net, w, chunk=3)


def enumerated_variance(grads: torch.Tensor, batch: int, replacement: bool) -> float:
    """E|g_B - g|^2 over every batch: all n^B ordered draws, or all C(n, B) subsets."""
    mean = grads.mean(0)
    rows = range(grads.shape[0])
    batches = itertools.product(rows, repeat=batch) if replacement else itertools.combinations(rows, batch)
    values = [float((grads[list(b)].mean(0) - mean).square().sum()) for b in batches]
    return math.fsum(values) / len(values)


def test_per_example_gradients_are_each_examples_autograd_gradient(tiny):
    net, w, grads = tiny
    for i in range(TINY):
        model = torch.nn.Linear(3, 2, dtype=torch.float64)
        set_flat_parameters(model, w)
        loss = torch.nn.functional.cross_entropy(model(net.inputs[i : i + 1]), net.targets[i : i + 1])
        loss.backward()
        expected = torch.cat([model.weight.grad.reshape(-1), model.bias.grad])
        torch.testing.assert_close(grads[i], expected, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize(
    ("batch", "replacement"), [(b, r) for b in (1, 2, 3, 5) for r in (True, False)] + [(TINY, False)]
)
def test_the_variance_formulas_equal_the_enumeration_of_every_batch(tiny, batch, replacement):
    _, _, grads = tiny
    trace = batch_table.noise_trace(grads)
    formula = batch_table.batch_variance_formula(trace, batch, TINY, replacement)
    assert formula == pytest.approx(enumerated_variance(grads, batch, replacement), rel=1e-12, abs=1e-15)


@pytest.mark.parametrize(("batch", "replacement"), [(2, True), (3, False), (5, False)])
def test_the_samplers_estimate_agrees_with_the_enumeration_within_3_se(tiny, batch, replacement):
    _, _, grads = tiny
    value, se = batch_table.batch_variance(grads, batch, replacement, 4000, seed=5)
    exact = enumerated_variance(grads, batch, replacement)
    assert se > 0 and abs(value - exact) <= 3 * se, (value, exact, se)


def test_first_reached_is_the_first_saved_step_at_or_below_the_target():
    losses = torch.tensor([[2.0, 2.0, 2.0], [0.5, 0.09, 2.0], [0.1, 0.2, 2.0]])
    steps = torch.tensor([0, 10, 20])
    assert batch_table.first_reached(losses, steps, 0.1) == [20, 10, None]


def test_the_use_cases_are_the_measured_superlatives():
    def mode(batch, steps, per_step, per_epoch):
        return {
            "batch": batch,
            "reached": steps,
            "seconds_per_step": per_step,
            "steps_per_epoch": per_epoch,
            "check": 1,
        }

    modes = [mode(100, [50, 60], 1.0, 1), mode(1, [300, 200], 0.05, 100), mode(10, [60, 50], 0.1, 10)]
    uses = batch_table._use_cases(modes, 100)
    assert uses == {100: "exact gradient", 1: "fewest epochs, cheapest step", 10: "fastest to the target"}


@pytest.fixture(scope="module")
def quick() -> Result:
    result = batch_table.run(batch_table.Config.quick())
    yield result
    import matplotlib.pyplot as plt

    for figure in result.figures:
        plt.close(figure)


def test_every_check_is_decided_by_its_own_numbers_and_the_theory_checks_pass(quick):
    assert quick.claim_checks and quick.verdict in ("held", "did not hold", "partly held")
    for row in quick.checks:
        value, theory, tolerance = row.value, row.theory, row.tolerance
        if row.criterion.startswith("|measured - theory|"):
            expected = abs(value - theory) <= tolerance
        else:
            assert row.criterion.startswith("measured >"), row
            expected = value - theory > tolerance
        assert row.passed == bool(expected), row
        if row.se is not None:
            assert row.se > 0 and "SE" in row.criterion, row
    failed = [row.id for row in quick.theory_checks if not row.passed]
    assert not failed
    assert {r.id for r in quick.theory_checks} >= {
        f"variance/B={b}/{w}" for b in (1, 32, 128, 512) for w in ("with", "without")
    }


def test_the_rows_arithmetic_recomputed(quick):
    config = batch_table.Config.quick()
    n, dim = quick.config["training examples"], quick.config["weights"]
    trace = quick.value("trace_sigma")
    for batch, lr in zip(config.batches, config.lrs):
        mid = "full" if batch == batch_table.FULL else f"B={batch}"
        b = n if batch == batch_table.FULL else batch
        assert quick.value(f"data_per_step/{mid}") == b
        expected = lr * trace / (2 * b * dim) * (n - b) / (n - 1)  # lr tr(Sigma)/(2Bd), without replacement
        assert quick.value(f"temperature/{mid}") == pytest.approx(expected, rel=1e-12, abs=1e-300)
        per_epoch = quick.value(f"seconds_per_step/{mid}") * (1 if b == n else n // b)
        assert quick.value(f"seconds_per_epoch/{mid}") == pytest.approx(per_epoch, rel=1e-12)
        if quick.value(f"reached/{mid}") == config.seeds:
            steps, epochs = quick.value(f"steps_to_target/{mid}"), quick.value(f"epochs_to_target/{mid}")
            assert epochs == pytest.approx(steps / (1 if b == n else n // b), rel=1e-12)
        assert 0 < quick.value(f"test_accuracy/{mid}") <= 1


def test_steps_to_the_target_from_the_replayed_spec_and_a_plain_model(quick):
    """The B = 32 run replayed from its stored spec; each seed's training cross-entropy computed by a
    plain torch model at the saved frames; the first frame at or below the target, averaged."""
    config = batch_table.Config.quick()
    data = [s for s in quick.specs if s["batch_size"] == 32 and s["save"] != "summary"]  # not the timing run
    assert len(data) == 1
    spec = RunSpec.from_dict(json.loads(json.dumps(data[0])))
    net = digits_mlp(**spec.landscape_params)
    traj = run_spec(spec, landscape=net)
    widths = ",".join([str(config.width)] * config.depth)
    model = build_model(f"mlp:{widths}", 64, 10, activation="relu")
    firsts = []
    for i in range(config.seeds):
        for frame, step in enumerate(traj.steps.tolist()):
            set_flat_parameters(model, traj.positions[frame, i])
            with torch.no_grad():
                loss = float(torch.nn.functional.cross_entropy(model(net.inputs), net.targets))
            if loss <= config.target:
                firsts.append(step)
                break
    assert len(firsts) == config.seeds
    assert quick.value("steps_to_target/B=32") == pytest.approx(sum(firsts) / len(firsts), rel=1e-12)


def test_figures_json_and_specs(quick, tmp_path):
    assert len(quick.figures) == 2
    for figure in quick.figures:
        assert figure.get_size_inches()[0] <= WIDTH_IN + 1e-9
        assert min(text_sizes(figure)) >= MIN_FONT_PT
    text = quick.save(tmp_path)["json"].read_text()
    back = Result.from_dict(json.loads(text))
    assert dumps(back.to_dict()) == text and back.verdict == quick.verdict
    assert len(quick.specs) == 2 * len(batch_table.Config.quick().batches)  # training and timing runs
    for data in quick.specs:
        assert RunSpec.from_dict(json.loads(json.dumps(data))).to_dict() == data


def test_a_table_figure_shows_its_cells_legibly_at_the_cards_width():
    import matplotlib.pyplot as plt

    from descent.experiments.figures import table_figure

    header, cells = (
        ["mode", "B", "a long column of use cases"],
        [["SGD", "1", "noisy"], ["full", "1437", "-"]],
    )
    figure = table_figure(header, cells, "a title", row_height=0.3, margin=0.6)
    try:
        (ax,) = figure.axes
        shown = {key: cell.get_text().get_text() for key, cell in ax.tables[0].get_celld().items()}
        assert shown == {(r, c): ([header] + cells)[r][c] for r in range(3) for c in range(3)}
        assert ax.get_title() == "a title" and not ax.axison
        assert figure.get_size_inches().tolist() == pytest.approx([WIDTH_IN, 0.6 + 0.3 * 3])
        assert min(text_sizes(figure)) >= MIN_FONT_PT
    finally:
        plt.close(figure)
