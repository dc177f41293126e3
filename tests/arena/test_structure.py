"""The Arena's structure (issue 11, item 7): every server callback addresses its outputs and inputs by
name, each mode's callbacks come from its entry in the mode registry, no module of the package reaches
into another's private names, and the page's scripts read no Plotly internals (no ``._name``)."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest
import torch
from dash import Dash

from descent.arena import ASSETS, create_app
from descent.arena.modes import modes
from descent.arena.state import default_state, normalize

torch.set_num_threads(1)

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "descent" / "arena"


@pytest.fixture(scope="module")
def app() -> Dash:
    return create_app()


def server_callbacks(app: Dash) -> dict[str, dict]:
    return {key: entry for key, entry in app.callback_map.items() if "callback" in entry}


def outputs(app: Dash) -> set[str]:
    """Every output ``id.property`` of the app's callbacks (client-side ones too)."""
    found = set()
    for key in app.callback_map:
        for part in key.strip(".").split("..."):
            found.add(part.split("@")[0].strip("."))
    return found


def test_every_server_callback_addresses_its_outputs_and_inputs_by_name(app):
    callbacks = server_callbacks(app)
    assert len(callbacks) >= 8
    positional = [
        key[:60]
        for key, entry in callbacks.items()
        if not isinstance(entry["outputs_indices"], dict)
        or not isinstance(entry["inputs_state_indices"], dict)
    ]
    assert not positional, positional


def test_each_modes_callbacks_come_from_its_registry_entry(app):
    registered: dict[str, set[str]] = {}
    for name, mode in modes().items():
        assert mode.register is not None, f"mode {name!r} registers no callbacks"
        alone = Dash(__name__)
        mode.register(alone)
        registered[name] = outputs(alone)
    # the player's views, arrows, exports and client-side hooks are the play mode's
    assert {
        "surface-graph.figure",
        "arrows-store.data",
        "download.data",
        "player-sink.data",
        "png-sink.data",
    } <= registered["play"]
    assert "step-graph.figure" in registered["step"] and "basin-graph.figure" in registered["maps"]
    # outside the modes: only the state callback, the share link and the mode switch
    rest = outputs(app) - set().union(*registered.values())
    assert rest >= {
        "state-store.data",
        "map-graph.figure",
        "anim-store.data",
        "share-link.value",
        "mode.data",
    }
    assert not rest & {"surface-graph.figure", "download.data", "player-sink.data", "arrows-store.data"}


def test_no_module_reads_another_modules_private_names():
    found = []
    for path in sorted(PACKAGE.glob("*.py")):
        tree = ast.parse(path.read_text())
        imported = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                private = [
                    a.name for a in node.names if a.name.startswith("_") and not a.name.startswith("__")
                ]
                found += [f"{path.name}:{node.lineno} from {node.module} import {name}" for name in private]
                imported |= {a.asname or a.name for a in node.names}
            elif isinstance(node, ast.Import):
                imported |= {(a.asname or a.name).split(".")[0] for a in node.names}
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
                and isinstance(node.value, ast.Name)
                and node.value.id in imported
            ):
                found.append(f"{path.name}:{node.lineno} {node.value.id}.{node.attr}")
    assert not found, found


def test_the_page_scripts_read_no_underscore_names():
    """Plotly's internals (``gd._fullLayout``, ``_fullData``, ``_size``) are not its API: the scripts
    read the public layout, the figure data the server sends and the DOM; their own state on an element
    has no underscore names either (so a grep for ``._`` finds nothing)."""
    for script in sorted(Path(ASSETS).glob("*.js")):
        text = re.sub(r"//[^\n]*|/\*.*?\*/", "", script.read_text(), flags=re.S)  # code, not comments
        assert not re.findall(r"\._[A-Za-z]\w*", text), (script.name, re.findall(r"\._[A-Za-z]\w*", text))


def test_a_racers_box_edits_that_racer_through_the_named_inputs(app):
    """A request as the browser posts it (flat lists; Dash groups them by name): racer 1's lr box."""
    state = normalize({**default_state(), "racers": [*default_state()["racers"], {"optimizer": "gd"}]})
    key = next(k for k in app.callback_map if "state-store.data" in k)
    entry = app.callback_map[key]
    edited = {"type": "racer-lr", "index": 1}

    def value(item: dict) -> object:
        if item["id"].startswith("{"):
            pattern = json.loads(item["id"])["type"]
            return [{"id": edited, "property": "value", "value": 0.05}] if pattern == "racer-lr" else []
        known = {"state-store.data": state}
        return {
            "id": item["id"],
            "property": item["property"],
            "value": known.get(f"{item['id']}.{item['property']}"),
        }

    outputs = [dict(zip(("id", "property"), part.rsplit(".", 1))) for part in key.strip(".").split("...")]
    body = {
        "output": key,
        "outputs": outputs,
        "inputs": [value(i) for i in entry["inputs"]],
        "changedPropIds": [json.dumps(edited, separators=(",", ":"), sort_keys=True) + ".value"],
        "state": [value(i) for i in entry["state"]],
    }
    answer = app.server.test_client().post("/_dash-update-component", json=body)
    assert answer.status_code == 200, answer.data[:300]
    new = answer.get_json()["response"]["state-store"]["data"]
    assert new["racers"][1]["hyper"]["lr"] == 0.05 and new["racers"][0] == state["racers"][0]
