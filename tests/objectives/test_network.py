"""NetworkObjective: a swarm of networks trained by ``simulate`` equals, particle by particle, the
standard PyTorch loop (a model, its forward pass on the particle's mini-batch, ``loss.backward()``,
``torch.optim``) fed the same sampler stream; value and gradient against autograd on one model."""

import inspect
import pickle

import pytest
import torch

from descent.dynamics import Batching, Events, SaveAt, simulate
from descent.dynamics.batches import draw_indices
from descent.landscapes import LANDSCAPES, get_landscape
from descent.objectives import NetworkObjective, digits_mlp, mlp_objective, network_objective
from descent.optim import Optimizer
from descent.spec import RunSpec, run_spec
from descent.train import build_model, set_flat_parameters

torch.set_num_threads(1)
STEPS = 100


@pytest.fixture(scope="module")
def net() -> NetworkObjective:
    return digits_mlp(width=16, depth=1, examples=300, activation=1)  # 1210 weights, 240 images


def model_at(net: NetworkObjective, w: torch.Tensor) -> torch.nn.Module:
    """A fresh model (the same architecture, built independently) holding the flat parameters ``w``."""
    model = build_model("mlp:16", 64, 10, activation="tanh", seed=7)
    set_flat_parameters(model, w)
    return model


def flat_grad(model: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.grad.reshape(-1) for p in model.parameters()])


def test_value_and_gradient_equal_autograd_on_one_model(net):
    w = net.inits([3, 4, 5])
    batch = torch.randint(0, net.data_size, (3, 17), generator=torch.Generator().manual_seed(0))
    for index in (None, batch):
        value, grad = net.value_and_grad(w, index)
        for i in range(3):
            model = model_at(net, w[i])
            rows = slice(None) if index is None else index[i]
            loss = torch.nn.functional.cross_entropy(model(net.inputs[rows]), net.targets[rows])
            loss.backward()
            torch.testing.assert_close(value[i], loss.detach(), rtol=1e-13, atol=0)
            torch.testing.assert_close(grad[i], flat_grad(model), rtol=1e-12, atol=1e-15)
    torch.testing.assert_close(net.value(w), net.value_and_grad(w)[0], rtol=1e-14, atol=0)


def test_metrics_are_the_models_loss_and_accuracy_on_the_test_data(net):
    w = net.inits([1, 2])
    metrics = net.metrics(w)
    for i in range(2):
        outputs = model_at(net, w[i])(net.test_inputs).detach()
        loss = torch.nn.functional.cross_entropy(outputs, net.test_targets)
        accuracy = (outputs.argmax(1) == net.test_targets).double().mean()
        torch.testing.assert_close(metrics["loss"][i], loss, rtol=1e-13, atol=0)
        assert float(metrics["accuracy"][i]) == float(accuracy)


# per particle: lr, momentum, batch size (240 = the full data), batch mode
SETTINGS = [
    (0.05, 0.0, 1, "replacement"),
    (0.1, 0.9, 8, "epoch"),
    (0.2, 0.5, 32, "without"),
    (0.3, 0.8, 240, "replacement"),
    (0.02, 0.95, 64, "epoch"),
]


def plain_loop(net, start, lr, momentum, size, mode, seed, particle):
    """The standard training loop for one network, on the engine's batch indices for ``particle``
    (``draw_indices``: the sampler stream); returns its parameters after every step ``[STEPS + 1, P]``."""
    model = model_at(net, start)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    path = [start.clone()]
    for k in range(STEPS):
        if size >= net.data_size:
            x, y = net.inputs, net.targets
        else:
            rows = draw_indices(seed, mode, size, net.data_size, torch.tensor([particle]), k)[0]
            x, y = net.inputs[rows], net.targets[rows]
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
        path.append(torch.cat([p.detach().reshape(-1) for p in model.parameters()]))
    return torch.stack(path)


def test_each_particle_of_a_swarm_equals_its_own_standard_training_loop(net):
    """Per-particle learning rates, momenta, batch sizes and modes, full batch included, one seeded
    initialisation per particle: every saved step within 1e-10 of the particle's own loop."""
    n, seed = len(SETTINGS), 11
    starts = net.inits(range(20, 20 + n))
    lrs, momenta, sizes, modes = (list(column) for column in zip(*SETTINGS))
    optimizer = Optimizer.build(
        "momentum",
        lr=torch.tensor(lrs, dtype=torch.float64),
        momentum=torch.tensor(momenta, dtype=torch.float64),
    )
    batching = Batching.build(sizes, modes, n, net.data_size)
    traj = simulate(net, optimizer, starts, STEPS, seed=seed, batching=batching, save=SaveAt())
    assert traj.steps_run == STEPS and traj.outcomes == ["moving"] * n
    for i, (lr, momentum, size, mode) in enumerate(SETTINGS):
        path = plain_loop(net, starts[i], lr, momentum, size, mode, seed, i)
        gap = float((traj.positions[:, i] - path).abs().max())
        assert gap < 1e-10, (i, gap)
        assert float((path[-1] - path[0]).norm()) > 0.1  # the networks did move


def test_each_particle_of_an_adam_swarm_equals_its_own_torch_adam_loop(net):
    """Adam with per-particle lr and beta1 against ``torch.optim.Adam``, mini-batches of 16 (epoch)."""
    lrs, beta1s = [1e-3, 3e-3, 1e-2], [0.9, 0.5, 0.0]
    starts = net.inits([31, 32, 33])
    as_tensor = {"dtype": torch.float64}
    optimizer = Optimizer.build(
        "adam", lr=torch.tensor(lrs, **as_tensor), beta1=torch.tensor(beta1s, **as_tensor)
    )
    batching = Batching.build(16, "epoch", 3, net.data_size)
    traj = simulate(net, optimizer, starts, STEPS, seed=2, batching=batching, save=SaveAt())
    for i, (lr, beta1) in enumerate(zip(lrs, beta1s)):
        model = model_at(net, starts[i])
        adam = torch.optim.Adam(model.parameters(), lr=lr, betas=(beta1, 0.999))
        for k in range(STEPS):
            rows = draw_indices(2, "epoch", 16, net.data_size, torch.tensor([i]), k)[0]
            adam.zero_grad()
            torch.nn.functional.cross_entropy(model(net.inputs[rows]), net.targets[rows]).backward()
            adam.step()
            position = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
            gap = float((traj.positions[k + 1, i] - position).abs().max())
            assert gap < 1e-10, (i, k, gap)


def test_a_run_is_reproducible_and_a_full_batch_particle_does_not_depend_on_the_swarm(net):
    starts = net.inits([5, 6, 7])
    optimizer = Optimizer.build("gd", lr=torch.tensor([0.1, 0.2, 0.3], dtype=torch.float64))
    batching = Batching.build(16, "epoch", 3, net.data_size)
    swarm = simulate(net, optimizer, starts, 20, seed=3, batching=batching)
    again = simulate(net, optimizer, starts, 20, seed=3, batching=batching)
    assert torch.equal(swarm.final_position, again.final_position)
    alone = simulate(net, optimizer.select(2), starts[2:], 20)
    together = simulate(net, optimizer, starts, 20)
    assert float((alone.final_position[0] - together.final_position[2]).abs().max()) < 1e-12


def test_a_spec_trains_a_swarm_of_networks_with_their_own_initialisations():
    spec = RunSpec(
        landscape="digits-mlp",
        landscape_params={"width": 8, "depth": 1, "examples": 200},
        optimizer="momentum",
        hyper={"lr": [0.1, 0.2, 1e4], "momentum": 0.9},
        starts="random:3",
        steps=60,
        save="summary",
        batch_size=[16, 32, 16],
        batch_mode="epoch",
        events={"target_loss": 1e-9},
        seed=4,
    )
    net = digits_mlp(**spec.landscape_params)  # passed with the spec: built once for the checks below
    traj = run_spec(RunSpec.from_json(spec.to_json()), landscape=net)
    seeds = torch.randint(0, 2**31 - 1, (3,), generator=torch.Generator().manual_seed(4)).tolist()
    assert torch.equal(traj.positions[0], net.inits(seeds))
    assert traj.outcomes[:2] == ["moving", "moving"] and traj.outcomes[2] == "diverged"
    assert float(traj.final_loss[0]) < float(traj.loss[0, 0])
    same = RunSpec.from_dict(
        {**spec.to_dict(), "starts": "default:2", "hyper": {"lr": 0.1}, "batch_size": 16}
    )
    first = run_spec(same.with_(steps=0), landscape=net).positions[0]
    assert torch.equal(first[0], first[1]) and torch.equal(first[:1], net.start())


def test_a_stored_digits_mlp_spec_replays_by_name():
    spec = RunSpec(
        landscape="digits-mlp",
        landscape_params={"width": 4, "depth": 1, "examples": 60, "activation": 1, "init_seed": 2},
        optimizer="momentum",
        hyper={"lr": 0.2, "momentum": 0.5},
        starts="random:2",
        steps=15,
        save="every:5",
        batch_size=8,
        seed=1,
    )
    replayed = run_spec(RunSpec.from_json(spec.to_json()))  # no objective passed: the registry builds it
    by_hand = mlp_objective("digits", 4, 1, 60, "tanh", 2)
    passed = run_spec(spec, landscape=by_hand)
    assert replayed.landscape.dim == by_hand.dim == 64 * 4 + 4 + 4 * 10 + 10
    assert torch.equal(replayed.positions, passed.positions) and torch.equal(replayed.loss, passed.loss)
    again = pickle.loads(pickle.dumps(replayed.landscape))  # pickles as its name and parameters
    assert again.recipe[1] == ("digits-mlp", {k: float(v) for k, v in spec.landscape_params.items()})
    assert torch.equal(again.value(passed.positions[-1]), by_hand.value(passed.positions[-1]))
    assert LANDSCAPES["digits-mlp"].quick_to_build()  # the listing builds it with its defaults
    defaults = {k: p.default for k, p in inspect.signature(digits_mlp).parameters.items()}
    assert LANDSCAPES["digits-mlp"].defaults == defaults  # the listing says what a call without them builds
    assert get_landscape("digits-mlp").dim == 64 * 16 + 16 + 16 * 10 + 10  # small: built quickly


def test_outcomes_are_stationary_target_or_diverged():
    net = network_objective(
        torch.nn.Linear(2, 1, dtype=torch.float64),
        torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], dtype=torch.float64),
        torch.tensor([1.0, -1.0, 0.0], dtype=torch.float64),
        "mse",
    )
    assert net.task == "regression" and net.dim == 3 and net.critical_points == ()
    optimizer = Optimizer.build("gd", lr=torch.tensor([0.5, 0.5, 50.0], dtype=torch.float64))
    events = Events(grad_tol=1e-9, stop_on=("converged",))
    starts = torch.tensor([[0.0, 0.0, 0.0], [0.3, 0.1, 0.2], [0.0, 0.0, 0.0]], dtype=torch.float64)
    traj = simulate(net, optimizer, starts, 5000, events=events)
    assert traj.outcomes == ["stationary", "stationary", "diverged"]
    exact = torch.linalg.lstsq(torch.cat([net.inputs, torch.ones(3, 1, dtype=torch.float64)], 1), net.targets)
    torch.testing.assert_close(traj.final_position[0], exact.solution, rtol=0, atol=1e-7)
    short = simulate(net, Optimizer.build("gd", lr=0.05), starts[:1], 30, events=Events(target_loss=0.2))
    assert short.outcomes == ["target"]


def test_an_mlp_on_another_dataset():
    net = mlp_objective("iris", 8, 1, activation="tanh", init_seed=3)
    assert (net.dim, net.data_size, net.name) == (4 * 8 + 8 + 8 * 3 + 3, 120, "iris-mlp")
    w = net.inits([3])
    torch.testing.assert_close(w, net.start())
    model = build_model("mlp:8", 4, 3, activation="tanh", seed=3)
    expected = torch.nn.functional.cross_entropy(model(net.test_inputs), net.test_targets)
    torch.testing.assert_close(net.metrics(w)["loss"][0], expected.detach(), rtol=1e-13, atol=0)


def test_it_pickles_by_its_recipe_and_refuses_bad_input(net):
    again = pickle.loads(pickle.dumps(net))
    w = net.inits([0])
    assert torch.equal(again.value(w), net.value(w))
    with pytest.raises(ValueError, match="invalid digits-mlp.activation=7"):
        digits_mlp(activation=7)
    with pytest.raises(ValueError, match="invalid model="):
        network_objective(torch.nn.BatchNorm1d(3), torch.zeros(4, 3), torch.zeros(4, dtype=torch.int64))
    with pytest.raises(ValueError, match="invalid loss='cross-entropy'"):
        network_objective(torch.nn.Linear(3, 1), torch.zeros(4, 3), torch.zeros(4), "cross-entropy")
    with pytest.raises(ValueError, match="invalid inputs="):
        network_objective(torch.nn.Linear(3, 1), torch.zeros(4, 3), torch.zeros(5), "mse")
