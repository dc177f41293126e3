"""The controls reducer and the callbacks' bad-input handling: messages, never exceptions."""

from __future__ import annotations

import copy
import os

import pytest
import torch

from descent._errors import DescentError
from descent.arena.callbacks import RUNS_BY_ID, VIEWS_BY_ID, controller, run_views
from descent.arena.controls import control_values, parse_pairs, racer_rows, reduce
from descent.arena.playmode import export, slower_views
from descent.arena.state import FORMULA, default_state, normalize

torch.set_num_threads(1)


def test_landscape_change_takes_its_own_lr_and_start():
    state = reduce(default_state(), "map-click", {"points": [{"x": 0.5, "y": 0.25}]})
    assert state["start"] == [0.5, 0.25]
    state = reduce(state, "landscape-dropdown", "plateau")
    assert state["landscape"] == "plateau" and state["start"] is None
    assert state["racers"][0]["hyper"]["lr"] == 0.1  # the plateau's default lr


def test_momentum_and_lr_controls():
    state = reduce(default_state(), "momentum-input", 0)
    assert state["racers"][0]["hyper"]["momentum"] == 0.0
    state = reduce(state, "lr-slider", -1.0)
    assert state["racers"][0]["hyper"]["lr"] == 0.1
    state = reduce(state, "lr-input", 0.0123)
    assert state["racers"][0]["hyper"]["lr"] == 0.0123
    gd = reduce(state, "optimizer-dropdown", "gd")
    assert gd["racers"][0] == {"optimizer": "gd", "hyper": {"lr": 0.0123}}
    back = reduce(gd, "momentum-slider", 0.9)  # momentum on plain GD makes it the heavy ball
    assert back["racers"][0] == {"optimizer": "momentum", "hyper": {"lr": 0.0123, "momentum": 0.9}}
    adam = reduce(state, "optimizer-dropdown", "adam")
    assert adam["racers"][0]["hyper"]["lr"] == 0.05  # adaptive rules: 1/80 of the box per step
    with pytest.raises(DescentError, match="has no momentum"):
        reduce(adam, "momentum-input", 0.5)


def test_values_render_back_into_the_controls():
    state = reduce(default_state(), "race-dropdown", ["gd", "adam"])
    values = control_values(state)
    assert values["landscape-dropdown"] == "double-well" and values["formula-input"] == ""
    assert values["race-dropdown"] == ["gd", "adam"]
    assert [r["optimizer"] for r in racer_rows(state)] == ["gd", "adam"]
    assert values["lr-slider"] == pytest.approx(-1.69897, abs=1e-4)
    formula = reduce(state, "formula", "x**2 + y**2")
    assert control_values(formula)["landscape-dropdown"] == FORMULA
    assert control_values(formula)["formula-input"] == "x**2 + y**2"


def test_race_rows_edit_their_racer():
    state = reduce(default_state(), "race-dropdown", ["gd", "nesterov"])
    assert state["racers"][1] == {"optimizer": "gd", "hyper": {"lr": 0.02}}
    assert state["racers"][2] == {"optimizer": "nesterov", "hyper": {"lr": 0.02, "momentum": 0.9}}
    state = reduce(state, "racer-field", (2, "momentum", 0.5))
    state = reduce(state, "racer-field", (1, "lr", 0.03))
    assert state["racers"][2]["hyper"]["momentum"] == 0.5 and state["racers"][1]["hyper"]["lr"] == 0.03
    with pytest.raises(DescentError, match="racer 1 \\(gd\\) lr"):
        reduce(state, "racer-field", (1, "lr", -2))
    state = reduce(state, "race-dropdown", ["nesterov"])
    assert [r["optimizer"] for r in state["racers"]] == ["momentum", "nesterov"]
    assert state["racers"][1]["hyper"]["momentum"] == 0.5  # kept


def test_parse_pairs():
    assert parse_pairs("tilt=0.5, kappa = 3", "p") == {"tilt": 0.5, "kappa": 3.0}
    with pytest.raises(DescentError, match="key=value"):
        parse_pairs("tilt", "p")
    with pytest.raises(DescentError, match="invalid p tilt"):
        parse_pairs("tilt=abc", "p")


@pytest.mark.parametrize(
    ("trigger", "values", "words"),
    [
        ("formula", None, "invalid formula"),
        ("steps-input", -5, "invalid steps=-5"),
        ("lr-input", 0, "invalid lr=0"),
        ("lr-input", None, "invalid lr=(empty)"),
        ("params-input", "tilt=9", "double-well.tilt"),
        ("params-input", "width=1", "double-well parameter"),
        ("noise-level", -1, "noise level"),
        ("unknown-control", 1, "invalid control"),
    ],
)
def test_controller_turns_bad_input_into_a_message(trigger, values, words):
    state = default_state()
    new, message, _ = controller(trigger, {trigger: values}, state, "", "")
    assert words in message, message
    assert new == state  # the previous state stays


def test_bad_formula_is_never_run(tmp_path, monkeypatch):
    canary = tmp_path / "canary"
    monkeypatch.chdir(tmp_path)
    text = f"__import__('os').system('touch {canary}')"
    new, message, _ = controller("formula-apply", {}, default_state(), "", text)
    assert "invalid landscape formula" in message and "__import__" in message
    assert not canary.exists() and not os.path.exists("canary")
    assert new == default_state()
    _, message, _ = controller("formula-apply", {}, default_state(), "", "x**")
    assert "syntax error" in message


def test_controller_restores_a_link_or_says_why_not():
    from descent.arena.state import state_url

    wanted = reduce(default_state(), "preset", "Saddle")
    new, message, _ = controller("url", {}, None, state_url(wanted), None)
    assert new == wanted and message == ""
    new, message, _ = controller(None, {}, None, "?s=garbage!", None)
    assert new == default_state() and "could not be restored" in message


def test_run_views_reports_errors_and_divergence():
    broken = default_state() | {"landscape": "x**2 + y**2 + z"}
    assert (
        "unknown variable" in run_views(broken, 0, [])["error"]
        or "invalid" in run_views(broken, 0, [])["error"]
    )
    assert "error" in run_views({"v": 1, "steps": "many"}, 0, [])
    state = normalize(reduce(default_state(), "preset", "Too large a step"))
    views = run_views(state, 0, ["ghost"])["views"]
    texts = str(views.outcome)
    assert "diverged at step" in texts
    assert views.lr_note_level == "bad" and "above the stability edge" in views.lr_note
    VIEWS_BY_ID.get(views.run_id, lambda: views)
    assert RUNS_BY_ID.items.get(views.run_id) is not None
    assert slower_views(views.run_id)["arrows"]["run"] == views.run_id


def test_exports(tmp_path):
    state = normalize(reduce(default_state(), "preset", "Saddle"))
    csv = export("csv", state)
    lines = csv["content"].splitlines()
    assert lines[0].startswith("racer,optimizer,step,particle,x0,x1,loss")
    assert {line.split(",")[1] for line in lines[1:]} == {"gd", "momentum"}
    payload = export("json", state)
    assert payload["filename"] == "descent-arena.json" and '"arena_state"' in payload["content"]


def test_background_route_serves_pngs_and_refuses_garbage():
    from descent.arena import create_app
    from descent.arena.figures import landscape_token

    client = create_app().server.test_client()
    good = client.get("/_arena/landscape.png?k=" + landscape_token("double-well", {}))
    assert good.status_code == 200 and good.data.startswith(b"\x89PNG")
    assert "max-age" in good.headers["Cache-Control"]
    for token in ("garbage", landscape_token("__import__('os')", {}), landscape_token("saddle", {"nope": 1})):
        assert client.get("/_arena/landscape.png?k=" + token).status_code == 404
    page = client.get("/")
    assert page.status_code == 200 and b"The Descent Arena" in page.data


def test_the_map_key_changes_with_the_maps_structure_not_with_the_run():
    """The player puts a new run into the map the page shows when only the run changed (same key);
    anything else that the figure draws (start, racers, swarm size, the faint path) changes the key."""
    base = normalize(default_state())

    def key(state: dict, options: tuple = ("ghost",)) -> str:
        views = run_views(normalize(state), 0, list(options))["views"]
        assert views.anim["mapKey"] == views.map["layout"]["meta"]["key"]
        return views.anim["mapKey"]

    other_lr = copy.deepcopy(base)
    other_lr["racers"][0]["hyper"]["lr"] = 0.03
    assert key(other_lr) == key(base)
    moved = base | {"start": [0.5, 1.0]}
    swarm = copy.deepcopy(base)
    swarm["swarm"].update(on=True, n=50)
    bigger = copy.deepcopy(swarm)
    bigger["swarm"]["n"] = 60
    race = base | {"racers": [*base["racers"], {"optimizer": "adam", "hyper": {"lr": 0.05}}]}
    keys = [key(base), key(base, ()), key(moved), key(swarm), key(bigger), key(race)]
    assert len(set(keys)) == len(keys)
