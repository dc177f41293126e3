"""Runs a state through the engine (`descent.spec.run_spec`, nothing else simulates) with small caches.

Landscapes (formulas cost a critical-point search) and trajectories are kept in LRU caches keyed by
their JSON spec, so replaying, sharing a link or moving a slider back is instant. The caches are
bounded by count and by bytes (a swarm's trajectory is tens of MB), so no sequence of links can make
the server hold more than ``CACHE_BYTES`` of runs in each.

Nothing that comes from a link or a box is built before it is checked (`get_landscape`): a registered
landscape's parameters are checked by name and size and its dimension is known to be 2 before its
factory runs (``sphere`` with ``dim = 1e7`` would allocate gigabytes), a formula goes through the
package's safe parser (which refuses one that is not finite anywhere on the box), and anything the
build still raises becomes one message in the package's format. A torch run (one the compiled kernel
does not take) stops once it has used ``RUN_SECONDS`` of CPU time, with a message naming the steps.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any, TypeVar

import torch

from descent._errors import DescentError, invalid, listed
from descent.arena.barrier import barrier
from descent.arena.state import is_swarm, short, state_specs
from descent.dynamics import Trajectory
from descent.landscapes import LANDSCAPES, Landscape
from descent.landscapes.search import box_sample, first_finite
from descent.spec import RunSpec, resolve_landscape, run_spec

T = TypeVar("T")

MB = 2**20
CACHE_BYTES = 48 * MB  # per cache of runs (trajectories, the runs by id, the views by id): one big swarm
PARAM_LIMIT = 1e6  # |a landscape parameter|: larger ones only overflow
RUN_SECONDS = 0.7  # CPU seconds a state's torch runs may take together
MAX_DATA_WORK = 500_000  # balls x examples of one step on a landscape with data (its tensors: ~4 MB each)


class LRUCache:
    """A thread-safe LRU cache of at most ``size`` items and (with ``weigh``) ``max_bytes`` bytes."""

    def __init__(
        self, size: int, max_bytes: int | None = None, weigh: Callable[[Any], int] | None = None
    ) -> None:
        self.size = size
        self.max_bytes = max_bytes
        self.weigh = weigh
        self.items: OrderedDict[str, Any] = OrderedDict()
        self.weights: dict[str, int] = {}
        self.lock = threading.Lock()

    def get(self, key: str, make: Callable[[], T]) -> T:
        with self.lock:
            if key in self.items:
                self.items.move_to_end(key)
                return self.items[key]
        value = make()
        weight = self.weigh(value) if self.weigh is not None else 0
        with self.lock:
            self.items[key] = value
            self.weights[key] = weight
            self.items.move_to_end(key)
            while len(self.items) > self.size or (
                self.max_bytes is not None and len(self.items) > 1 and self.bytes() > self.max_bytes
            ):
                old, _ = self.items.popitem(last=False)
                self.weights.pop(old, None)
        return value

    def bytes(self) -> int:
        return sum(self.weights.values())

    def clear(self) -> None:
        with self.lock:
            self.items.clear()
            self.weights.clear()


def tensor_bytes(value: object, depth: int = 0) -> int:
    """Bytes held by the tensors in ``value`` (a tensor, a list/tuple/dict of them, or an object's
    fields), two levels deep."""
    if isinstance(value, torch.Tensor):
        return value.nelement() * value.element_size()
    if depth > 2:
        return 0
    if isinstance(value, dict):
        return sum(tensor_bytes(v, depth + 1) for v in value.values())
    if isinstance(value, (list, tuple)):
        return sum(tensor_bytes(v, depth + 1) for v in value)
    if hasattr(value, "__dict__") and not isinstance(value, type):
        return sum(tensor_bytes(v, depth + 1) for v in vars(value).values())
    return 0


LANDSCAPE_CACHE = LRUCache(32)
RUN_CACHE = LRUCache(24, CACHE_BYTES, tensor_bytes)
REFUSED = LRUCache(64)  # spec JSON -> the message of a run stopped at its time budget


def landscape_key(text: str, params: dict[str, float]) -> str:
    return json.dumps([text, params], sort_keys=True)


def _default_dim(name: str) -> int:
    """The dimension of registered landscape ``name`` with its default parameters (built once)."""
    key = landscape_key(name, {})
    return LANDSCAPE_CACHE.get(key, lambda: built(key, name, lambda: resolve_landscape(name))).dim


# --- landscapes that take long to build --------------------------------------------------------------
BUILD_WAIT = 1.0  # seconds a request waits for a landscape's build before it answers "being built"
MAX_BUILDS = 2  # builds under way at once (each a thread); one more is refused until one ends
BUILDS: dict[str, tuple[Future, float]] = {}  # landscape key -> (its build, when it started)
BUILDS_LOCK = threading.Lock()


class LandscapeBuilding(DescentError):
    """A landscape whose first build takes longer than ``BUILD_WAIT`` (``digits-slice`` trains a network
    and tabulates its loss): it goes on in the background and the request is answered at once."""


def built(key: str, text: str, make: Callable[[], Landscape]) -> Landscape:
    """``make()`` in a background thread (one per ``key``, shared by the requests that ask for it),
    waited for at most ``BUILD_WAIT`` seconds: the landscape, its build's own error, or
    `LandscapeBuilding` saying that it is being built (ask again later: the same build answers)."""
    with BUILDS_LOCK:
        entry = BUILDS.get(key)
        if entry is None:
            running = sum(not future.done() for future, _ in BUILDS.values())
            if running >= MAX_BUILDS:
                raise LandscapeBuilding(
                    f"{short(text)} cannot be built now: the server is building {running} other landscapes "
                    "(each once, at first use); choose it again in a moment"
                )
            entry = (Future(), time.monotonic())
            BUILDS[key] = entry
            threading.Thread(target=_run_build, args=(entry[0], make), daemon=True).start()
    future, started = entry
    try:
        landscape = future.result(timeout=BUILD_WAIT)
    except FutureTimeout:
        raise LandscapeBuilding(_building_message(text, time.monotonic() - started)) from None
    finally:
        if future.done():
            with BUILDS_LOCK:
                if BUILDS.get(key) is entry:
                    del BUILDS[key]
    return landscape


def building() -> bool:
    """Is a landscape being built in the background now?"""
    with BUILDS_LOCK:
        return any(not future.done() for future, _ in BUILDS.values())


def _run_build(future: Future, make: Callable[[], Landscape]) -> None:
    try:
        future.set_result(make())
    except BaseException as error:  # noqa: BLE001 - handed to the request that asks for it
        future.set_exception(error)


def _building_message(text: str, seconds: float) -> str:
    entry = LANDSCAPES.get(text)
    what = f" — {entry.summary} —" if entry is not None else ""
    return (
        f"{short(text)} is being built{what} in the background, once: started {seconds:.0f} s ago (later "
        "it is read from the cache at once); the page shows it as soon as it is ready"
    )


#: landscapes the Arena takes with their default parameters only: any other value is a new build at first
#: use (digits-slice: a network trained and resolution^2 losses tabulated), which a link could repeat
FIXED_PARAMS = ("digits-slice",)


def check_landscape_params(text: str, params: dict[str, Any]) -> dict[str, float]:
    """The checked parameters of landscape ``text`` for the Arena, before anything is built: known
    names, finite numbers of at most ``PARAM_LIMIT``, a dimension of 2; raises DescentError."""
    if not isinstance(params, dict):
        raise invalid("landscape parameters", short(params), "an object of numbers")
    if text not in LANDSCAPES:
        if params:
            raise invalid("formula parameters", short(params), "none (a formula takes no parameters)")
        return {}
    entry = LANDSCAPES[text]
    for key in params:
        if key not in entry.defaults:
            allowed = listed(entry.defaults) or "no parameters"
            raise invalid(f"{text} parameter", short(key), f"one of: {allowed}")
    if text in FIXED_PARAMS and any(params[k] != entry.defaults[k] for k in params):
        defaults = ", ".join(f"{k}={v:g}" for k, v in entry.defaults.items())
        raise invalid(
            f"{text} parameters",
            short(params),
            f"its defaults in the Arena ({defaults}): another value trains and tabulates anew at first "
            f"use (seconds to minutes of the server's time); `descent run --landscape {text} --param` "
            "takes it",
        )
    if "dim" in entry.defaults:
        if params.get("dim", entry.defaults["dim"]) != 2:  # 2 == 2.0; anything else, before it is built
            raise invalid(f"{text}.dim", short(params["dim"]), "2 (the Arena draws maps of x and y)")
    elif _default_dim(text) != 2:
        raise invalid("landscape", text, "a 2-D landscape (the Arena draws maps of x and y)")
    return {key: number(f"{text}.{key}", value, -PARAM_LIMIT, PARAM_LIMIT) for key, value in params.items()}


def number(parameter: str, value: object, low: float, high: float) -> float:
    """``value`` as a finite float in [low, high], else the package's message (never OverflowError)."""
    allowed = f"a finite number in [{low:g}, {high:g}]"
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise invalid(parameter, short(value), allowed)
    try:
        result = float(value)
    except (TypeError, ValueError, OverflowError):
        raise invalid(parameter, short(value), allowed) from None
    if not (math.isfinite(result) and low <= result <= high):
        raise invalid(parameter, short(value), allowed)
    return result


def _build(text: str, params: dict[str, float]) -> Landscape:
    try:
        landscape = resolve_landscape(text, **params)
    except DescentError:
        raise
    except Exception as error:  # noqa: BLE001 - a factory's own failure, in the message format
        reason = str(error).strip().splitlines()[0][:120] if str(error).strip() else type(error).__name__
        raise invalid(
            f"{short(text)} parameters", short(params), f"values it can be built with (it failed: {reason})"
        ) from None
    if landscape.dim != 2:
        raise invalid("landscape dimension", landscape.dim, "2 (the Arena draws maps of x and y)")
    value_at, both_at = first_finite(landscape.value_and_gradient, box_sample(landscape.bounds, 33))
    if both_at is None:
        what = "U" if value_at is None else "the gradient of U"
        raise invalid(
            f"{short(text)} with {short(params)}" if params else short(text),
            "not finite",
            f"a landscape whose {what} is finite somewhere in its box",
        )
    barrier(landscape)  # an L2 barrier's paths (seconds for a huge lambda): made with the landscape, cached
    return landscape


def get_landscape(text: str, params: dict[str, float] | None = None) -> Landscape:
    """The 2-D landscape called (or written as) ``text`` with ``params``, checked before it is built
    and cached; raises DescentError."""
    if not isinstance(text, str):
        raise invalid("landscape", short(text), f"one of: {listed(LANDSCAPES)}; or a formula in x, y")
    text = text.strip()
    params = check_landscape_params(text, dict(params or {}))
    key = landscape_key(text, params)
    return LANDSCAPE_CACHE.get(key, lambda: built(key, text, lambda: _build(text, params)))


def warm_landscapes() -> float:
    """Build every registered landscape with its defaults (kept in the cache), so that no first visitor
    waits for one (eggholder's and logistic-risk's critical points take about a second each, digits-slice
    trains a network and tabulates its loss at its first use on a machine: about 20 s, once); waits for
    those built in the background, so that the server starts with none under way. Returns the seconds
    it took."""
    start = time.perf_counter()
    for name in LANDSCAPES:
        while True:
            try:
                get_landscape(name)
            except LandscapeBuilding:
                continue  # each try waits BUILD_WAIT for the build under way
            except DescentError:
                pass  # not 2-D: refused, and remembered as such
            break
    return time.perf_counter() - start


class _OverBudget(Exception):
    """A run stopped at its CPU-time budget (``done`` of ``steps`` steps after ``seconds``)."""

    def __init__(self, done: int, steps: int, seconds: float) -> None:
        super().__init__(done, steps, seconds)
        self.done, self.steps, self.seconds = done, steps, seconds


class _Budget:
    """A progress callback that stops a run once the thread has used ``seconds`` of CPU time since
    ``start`` (shared by a state's runs)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.start = time.thread_time()

    def used(self) -> float:
        return time.thread_time() - self.start

    def __call__(self, done: int, steps: int) -> None:
        used = self.used()
        if used > self.seconds and done < steps:
            raise _OverBudget(done, steps, used)


def _refusal(spec: RunSpec, stop: _OverBudget, landscape: Landscape) -> DescentError:
    estimate = stop.seconds * stop.steps / max(stop.done, 1)
    balls = spec.starts_count(landscape.dim)
    size = f"{spec.steps} steps" + (f" x {balls} balls" if balls > 1 else "")
    return invalid(
        "steps",
        spec.steps,
        f"a run the server can do in {RUN_SECONDS:g} s: {size} on {short(spec.landscape)} with "
        f"{spec.optimizer} would take about {estimate:.0f} s (this landscape runs without the compiled "
        "kernel); fewer steps or balls",
    )


def kernel_being_built(spec: RunSpec, landscape: Landscape) -> bool:
    """Is the compiled kernel of ``spec``'s run being built in the background (`defer_compiling`), so
    that the run went to torch only for now? Asked of this run's own kernel, not of any compilation
    under way: the same spec for no step falls back to torch saying so while its kernel compiles."""
    if spec.backend != "auto":
        return False
    return "built in the background" in (
        run_spec(spec.with_(steps=0, probes=[]), landscape=landscape).fallback or ""
    )


def run_cached(
    spec: RunSpec, landscape: Landscape | None = None, budget: Callable[[int, int], None] | None = None
) -> Trajectory:
    """``run_spec(spec)``, cached by the spec's canonical JSON; ``landscape``: the spec's, from
    `get_landscape`; ``budget``: a progress callback that may stop the run (`_Budget`)."""
    key = spec.to_json()
    refused = REFUSED.items.get(key)
    if refused is not None:
        raise DescentError(refused)
    try:
        return RUN_CACHE.get(key, lambda: run_spec(spec, budget, landscape=landscape))
    except _OverBudget as stop:
        if landscape is None:
            landscape = spec.build_landscape()
        if kernel_being_built(spec, landscape):  # on torch only because its kernel is compiling: not for good
            raise invalid(
                "steps",
                spec.steps,
                "a moment's patience: the compiled kernel for this run is being built (a few seconds, "
                "once); press Reset Ball again",
            ) from None
        error = _refusal(spec, stop, landscape)
        REFUSED.get(key, lambda: str(error))
        raise error from None


@dataclass
class ArenaRun:
    """A state's landscape, its specs and one trajectory per racer (one swarm trajectory in swarm mode)."""

    state: dict[str, Any]
    landscape: Landscape
    specs: list[RunSpec]
    trajectories: list[Trajectory]

    @property
    def swarm(self) -> bool:
        return is_swarm(self.state)


def check_start(state: dict[str, Any], landscape: Landscape) -> None:
    """A chosen start must lie on the map (the landscape's box); raises DescentError."""
    start = state["start"]
    if start is None:
        return
    (x0, x1), (y0, y1) = landscape.bounds
    if not (x0 <= start[0] <= x1 and y0 <= start[1] <= y1):
        raise invalid("start", start, f"a point on the map: x in [{x0:g}, {x1:g}], y in [{y0:g}, {y1:g}]")


def check_work(state: dict[str, Any], landscape: Landscape) -> None:
    """On a landscape with data each ball's step sums over every example: at most ``MAX_DATA_WORK``
    ball-examples a step (the swarm's tensors stay small); raises DescentError."""
    examples = getattr(landscape, "data_size", None)
    if examples and is_swarm(state) and state["swarm"]["n"] * examples > MAX_DATA_WORK:
        most = MAX_DATA_WORK // examples
        raise invalid(
            "swarm balls",
            state["swarm"]["n"],
            f"at most {most} on {state['landscape']} (each ball's step sums its {examples} examples)",
        )


def run_state(state: dict[str, Any]) -> ArenaRun:
    """Build the landscape and run every racer of a normalised ``state``; raises DescentError.

    The runs are the plain ones: the ball's probes (its ``specs[0]``'s, `state_specs`) are left out,
    so a new state's first frame waits only for the paths; `probed_ball` runs the ball with them."""
    landscape = get_landscape(state["landscape"], state["params"])
    check_start(state, landscape)
    check_work(state, landscape)
    specs = state_specs(state, [float(v) for v in landscape.start().squeeze(0).tolist()])
    budget = _Budget(RUN_SECONDS)
    trajectories = [run_cached(spec.with_(probes=[]), landscape, budget) for spec in specs]
    return ArenaRun(state, landscape, specs, trajectories)


def probed_ball(run: ArenaRun) -> Trajectory:
    """The ball's run with its probes (``update_parts``: the arrows; ``optimizer_state``: an adaptive
    rule's edge): the same path as ``run.trajectories[0]`` (a probe only reads the steps)."""
    return run_cached(run.specs[0], run.landscape, _Budget(RUN_SECONDS))


def first_steps(run: ArenaRun) -> Trajectory:
    """The ball's first two steps with the ``update_parts`` probe at each: which parts the rule's
    update has (a coast from the second step on: inertia, a running mean, Langevin's kick), known
    before the probed run (`probed_ball`) is made."""
    spec = run.specs[0]
    short = spec.with_(
        steps=min(spec.steps, 2), save="every:1", probes=[{"name": "update_parts", "every": 1}]
    )
    return run_cached(short, run.landscape, _Budget(RUN_SECONDS))
