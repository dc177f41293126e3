"""Vanishing and exploding gradients (the seeds' "fog" and "wild moves"): per-layer gradient norms
through deep sigmoid, tanh and ReLU networks at initialisation, against mean-field theory's per-layer
factor chi, and what gradient clipping does to an exploding network's training.

Theory (:mod:`descent.theory.signal`). In a network with pre-activations ``h^l = W^l phi(h^(l-1))``,
weights ``N(0, sigma_w^2/N)`` and equal widths N, backpropagation gives ``dL/dh^l = phi'(h^l) *
(W^(l+1))^T dL/dh^(l+1)``; mean-field theory (infinite width; the backward weights treated as
independent of the forward ones; pre-activations Gaussian with the variance ``q^l`` of the variance
map) gives ``E|dL/dh^l|^2 = chi(q^l) E|dL/dh^(l+1)|^2`` with ``chi(q) = sigma_w^2 E[phi'(sqrt(q) z)^2]``.
Over the hidden layers 1..L the mean squared gradient therefore falls (chi < 1, vanishing) or grows
(chi > 1, exploding) geometrically toward the input, by the per-layer factor

    measured:  (m_1 / m_L)^(1/(L-1)),   m_l = mean over examples and networks of |dL/dh^l|^2,
    theory:    (prod_{l<L} chi(q^l))^(1/(L-1)),

the geometric mean of the successive layers' ratios. The inputs have the fixed point's variance
``q*`` where the map has a positive finite one (then every chi(q^l) is ``chi_1 = chi(q*)``), else
``q^1 = 1`` (relu without bias, whose chi does not depend on q; tanh with sigma_w^2 <= 1, whose q^l
decays to 0). The SE is the delta method's for the log of a ratio of means over independent networks
(each its own weights and inputs). At finite width the theory is off by O(1/N) (the correlations the
independence assumption drops, and q^l's fluctuation around the map): measured with 50-400 networks
per setting, the relative deviation was at most 2.5 % at N = 64 (relu at He's and 4 x critical
variance, +2.5 % and +2.2 %), 1.0 % at 128 and 0.6 % at 256, about 1.6/N; each check allows 3 SE
plus ``BIAS_WIDTH / N`` = 2/N of chi (0.8 % at the width used, 256).

Initialisations per activation (biases 0): Xavier (``sigma_w^2 = 2/(fan_in + fan_out) = 1/N`` times N:
1), He (2), and badly scaled ones at 0.5 and 4 times the edge of chaos ``chi_1 = 1`` (tanh 1, relu 2,
sigmoid about 103); a setting equal to an earlier one is not repeated.

Clipping. A deep ReLU network at 4 times its critical weight variance (its gradients grow 4-fold per
layer toward the input) is trained full batch on digits with momentum by the engine (a
`~descent.objectives.NetworkObjective`, one network per particle, one `RunSpec` with and one without
the ``clip_norm`` transform, which scales each network's whole gradient to at most that norm), from the
same ``clip_runs`` initialisations. A run diverges when its loss, gradient or weights become non-finite
(or a weight leaves 100 boxes of 10: the engine's ``diverged`` event); the claim check compares the
shares of runs that stay finite.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from descent._errors import invalid, listed
from descent.experiments._base import Progress, Result, Row, Runs
from descent.experiments.figures import finish, subplots
from descent.experiments.rows import agrees, below, exceeds, number, share_se
from descent.spec import RunSpec
from descent.theory.signal import chi, critical_sigma_w2, fixed_point, variance_sequence
from descent.train.gradients import layer_gradients

NAME = "vanishing-exploding"
CLAIM = (
    "Gradients can vanish (fog: the early layers barely move) or explode (wild moves) in deep "
    "networks, depending on the activation and the initialisation; gradient clipping keeps an "
    "exploding run finite."
)
PROTOCOL = (
    "Deep sigmoid, tanh and ReLU MLPs at initialisation (Xavier, He, and 0.5 and 4 times the critical "
    "weight variance), many networks each: the mean squared gradient with respect to each layer's "
    "pre-activations, and its per-layer factor over depth against mean-field theory's chi = sigma_w^2 "
    "E[phi'(z)^2]. An exploding ReLU network is trained on digits with momentum with and without "
    "gradient clipping, and the runs whose loss stays finite are counted."
)

ACTIVATIONS = ("sigmoid", "tanh", "relu")
INITS = ("xavier", "he", "0.5-critical", "4-critical")
INIT_LABELS = {"xavier": "Xavier", "he": "He", "0.5-critical": "0.5 x critical", "4-critical": "4 x critical"}
COLORS = {"sigmoid": "tab:green", "tanh": "tab:blue", "relu": "tab:red"}
BIAS_WIDTH = 2.0  # finite-width deviation from mean-field theory: BIAS_WIDTH/N of chi (module docstring)
N_CLASSES = 10


@dataclass(frozen=True)
class Config:
    activations: tuple[str, ...] = ACTIVATIONS
    inits: tuple[str, ...] = INITS
    depth: int = 20  # hidden layers
    width: int = 256
    batch: int = 32  # inputs per network
    networks: int = 100  # independent networks per setting
    clip_depth: int = 20
    clip_width: int = 64
    clip_activation: str = "relu"
    clip_init: str = "4-critical"
    clip_lr: float = 0.01
    clip_momentum: float = 0.9
    clip_norm: float = 1.0
    clip_steps: int = 60
    clip_runs: int = 8
    clip_examples: int = 500  # the first digits training examples, full batch
    seed: int = 0

    @classmethod
    def quick(cls) -> Config:
        return cls(networks=12, clip_steps=20, clip_runs=3, clip_examples=200)

    def __post_init__(self) -> None:
        for name in self.activations:
            if name not in ACTIVATIONS:
                raise invalid("activations", name, f"one of: {listed(ACTIVATIONS)}")
        for name in (*self.inits, self.clip_init):
            if name not in INITS:
                raise invalid("inits", name, f"one of: {listed(INITS)}")
        if self.clip_activation not in ACTIVATIONS:
            raise invalid("clip_activation", self.clip_activation, f"one of: {listed(ACTIVATIONS)}")
        for name in ("depth", "width", "batch", "networks", "clip_depth", "clip_width", "clip_runs"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 2:
                raise invalid(name, value, "an integer >= 2")


def sigma_w2(activation: str, init: str) -> float:
    """The weight variance (times fan-in) of ``init`` for square layers."""
    if init == "xavier":
        return 1.0
    if init == "he":
        return 2.0
    factor = {"0.5-critical": 0.5, "4-critical": 4.0}[init]
    return factor * critical_sigma_w2(activation)


def settings(config: Config) -> list[tuple[str, str, float]]:
    """(activation, init, sigma_w^2) for every setting, a sigma_w^2 already listed for the activation
    skipped (relu: Xavier's 1 is 0.5 x critical)."""
    out = []
    for activation in config.activations:
        seen: set[float] = set()
        for init in config.inits:
            value = sigma_w2(activation, init)
            if any(math.isclose(value, s, rel_tol=1e-12) for s in seen):
                continue
            seen.add(value)
            out.append((activation, init, value))
    return out


def init_name(activation: str, init: str) -> str:
    """The initialisation as ``build_model`` names it (the bad ones as ``normal:SIGMA``)."""
    if init in ("xavier", "he"):
        return init
    return f"normal:{math.sqrt(sigma_w2(activation, init))!r}"


def input_variance(activation: str, value: float) -> float:
    """``q^1``: the fixed point q* where it is positive and finite, else 1."""
    q = fixed_point(value, 0.0, activation)
    return q if 0.0 < q < math.inf else 1.0


# --- the measurement -----------------------------------------------------------------------------
def deep_mlp(activation: str, init: str, width: int, depth: int, n_inputs: int, seed: int) -> nn.Sequential:
    """``depth`` hidden layers of ``width`` units, ``N_CLASSES`` logits, float64, from ``seed``."""
    from descent.train.models import build_model

    spec = "mlp:" + ",".join([str(width)] * depth)
    return build_model(spec, n_inputs, N_CLASSES, activation=activation, init=init, seed=seed)  # type: ignore[return-value]


def network_inputs(
    width: int, batch: int, q1: float, value: float, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Gaussian inputs with ``E[x^2] = q1/sigma_w^2`` (so the first layer's variance is q1) and
    uniform random labels, from ``seed``."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, width, generator=generator, dtype=torch.float64) * math.sqrt(q1 / value)
    y = torch.randint(0, N_CLASSES, (batch,), generator=generator)
    return x, y


def log_ratio_se(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """``log(mean a / mean b)`` over paired samples and its SE by the delta method,
    ``var = var(a)/(n a^2) + var(b)/(n b^2) - 2 cov(a, b)/(n a b)`` (bars: means)."""
    n = len(a)
    ma, mb = float(a.mean()), float(b.mean())
    cov = np.cov(a, b, ddof=1)
    variance = cov[0, 0] / ma**2 + cov[1, 1] / mb**2 - 2.0 * cov[0, 1] / (ma * mb)
    return math.log(ma / mb), math.sqrt(max(variance, 0.0) / n)


def measure(activation: str, init: str, value: float, config: Config, index: int) -> dict:
    """Every network of one setting: per-layer mean squared gradients, the measured per-layer factor
    and its SE, and the theory."""
    q1 = input_variance(activation, value)
    qs = variance_sequence(q1, config.depth, value, 0.0, activation)
    chis = np.array([chi(q, value, activation) for q in qs])
    pre = np.zeros((config.networks, config.depth))
    weights = np.zeros((config.networks, config.depth))
    name = init_name(activation, init)
    for k in range(config.networks):
        seed = config.seed + 1000 * index + k
        model = deep_mlp(activation, name, config.width, config.depth, config.width, seed)
        x, y = network_inputs(config.width, config.batch, q1, value, seed + 500_000)
        pre[k], weights[k] = layer_gradients(model, x, y)
    span = config.depth - 1
    log_ratio, log_se = log_ratio_se(pre[:, 0], pre[:, -1])
    factor = math.exp(log_ratio / span)
    return {
        "activation": activation,
        "init": init,
        "sigma_w2": value,
        "q1": q1,
        "q": np.array(qs),
        "chi": chis,
        "theory": float(np.exp(np.log(chis[:-1]).mean())),
        "factor": factor,
        "se": factor * log_se / span,
        "mean_sq": pre.mean(axis=0),
        "weight_sq": weights.mean(axis=0),
        "weight_factor": math.exp(log_ratio_se(weights[:, 0], weights[:, -1])[0] / span),
    }


# --- clipping ----------------------------------------------------------------------------------
CLIP_OBJECTIVE = "digits-deep-mlp"


def clip_objective(config: Config):
    """The deep network on the first ``clip_examples`` digits training images as an engine objective
    (one network per particle; its initialisation ``init_name`` of ``clip_init``)."""
    from descent.objectives import network_objective
    from descent.train.data import load_dataset

    data = load_dataset("digits", seed=config.seed)
    x, y = data.x_train[: config.clip_examples], data.y_train[: config.clip_examples]
    activation, init = config.clip_activation, init_name(config.clip_activation, config.clip_init)
    model = deep_mlp(activation, init, config.clip_width, config.clip_depth, x.shape[1], config.seed)
    return network_objective(model, x, y, "cross-entropy", init=init, name=CLIP_OBJECTIVE, lr=config.clip_lr)


def clip_spec(config: Config, clip: bool) -> RunSpec:
    """Full-batch momentum from ``clip_runs`` networks (``random:N``: the same ones with and without
    clipping), with the engine's ``clip_norm`` transform (the whole gradient scaled to at most
    ``clip_norm``) when ``clip``."""
    return RunSpec(
        landscape=CLIP_OBJECTIVE,
        optimizer="momentum",
        hyper={"lr": config.clip_lr, "momentum": config.clip_momentum},
        transforms=[{"kind": "clip_norm", "max_norm": config.clip_norm}] if clip else [],
        starts=f"random:{config.clip_runs}",
        steps=config.clip_steps,
        save="summary",
        seed=config.seed,
    )


def clipping(config: Config, runs: Runs) -> dict:
    """Per setting (False: plain, True: clipped): the runs' initial and final losses, the step each
    diverged at (-1: never) and how many stayed finite."""
    objective = clip_objective(config)
    out: dict = {}
    for clip in (False, True):
        trajectory = runs(clip_spec(config, clip), objective=objective)
        diverged = trajectory.events["diverged"].numpy()
        out[clip] = {
            "start": trajectory.loss[0].numpy(),
            "final": trajectory.final_loss.numpy(),
            "diverged": diverged,
            "finite": int((diverged < 0).sum()),
            "runs": len(diverged),
            "outcomes": list(trajectory.outcomes),
        }
    return out


# --- the experiment ------------------------------------------------------------------------------
def run(config: Config | None = None, progress: Progress | None = None) -> Result:
    config = config or Config()
    units = settings(config)
    measured = []
    for index, (activation, init, value) in enumerate(units):
        measured.append(measure(activation, init, value, config, index))
        if progress is not None:
            progress(index + 1, len(units) + 1)
    runs = Runs()
    clipped = clipping(config, runs)
    if progress is not None:
        progress(len(units) + 1, len(units) + 1)
    config_dict = {
        **asdict(config),
        "sigma_b2": 0.0,
        "loss": "cross-entropy summed over the examples, uniform random labels, Gaussian inputs",
        "theory": "chi(q) = sigma_w^2 E[phi'(sqrt(q) z)^2] along the variance map (descent.theory.signal)",
        "bias_rel": BIAS_WIDTH / config.width,
    }
    return Result(
        NAME,
        CLAIM,
        PROTOCOL,
        _rows(config, measured, clipped),
        config_dict,
        [_figure(config, measured, clipped)],
        runs.specs,
    )


def _label(m: dict) -> str:
    return f"{m['activation']}, {INIT_LABELS[m['init']]} (sigma_w^2 = {m['sigma_w2']:.4g})"


def _rows(config: Config, measured: list[dict], clipped: dict) -> list[Row]:
    out: list[Row] = []
    span = config.depth - 1
    bias_rel = BIAS_WIDTH / config.width
    for m in measured:
        key = f"{m['activation']}/{m['init']}"
        label = _label(m)
        theory, factor, se = m["theory"], m["factor"], m["se"]
        group = "per-layer gradient factor against mean-field chi"
        out.append(
            agrees(
                f"factor/{key}",
                f"{label}: per-layer factor of the mean squared gradient",
                factor,
                theory,
                se=se,
                bias=bias_rel * theory,
                group=group,
                key=key in ("sigmoid/xavier", "relu/4-critical"),
            )
        )
        total = factor**span
        if theory < 1.0 - bias_rel:
            out.append(
                below(
                    f"vanishes/{key}",
                    f"{label}: the gradient vanishes toward the input (per-layer factor < 1)",
                    factor,
                    1.0,
                    se=se,
                    group="fog and wild moves (claim)",
                    if_pass=f"Fog: with {label} the mean squared gradient falls {factor:.3g}-fold per layer, "
                    f"{total:.2g} over {span} layers (theory {theory:.3g} per layer).",
                    if_fail=f"With {label} the gradient did not measurably vanish (factor {factor:.3g}).",
                )
            )
        elif theory > 1.0 + bias_rel:
            out.append(
                exceeds(
                    f"explodes/{key}",
                    f"{label}: the gradient explodes toward the input (per-layer factor > 1)",
                    factor,
                    1.0,
                    se=se,
                    group="fog and wild moves (claim)",
                    if_pass=f"Wild moves: with {label} the mean squared gradient grows {factor:.3g}-fold per "
                    f"layer, {total:.2g} over {span} layers (theory {theory:.3g}).",
                    if_fail=f"With {label} the gradient did not measurably explode (factor {factor:.3g}).",
                )
            )
        out.append(
            number(
                f"weight_factor/{key}",
                f"{label}: per-layer factor of the weight gradients' squared norms (for relu without bias "
                "the forward variance's change cancels chi: 1 at any sigma_w^2)",
                m["weight_factor"],
                group="weight gradients",
            )
        )
    plain, clip = clipped[False], clipped[True]
    share_plain, se_plain = share_se(plain["finite"], plain["runs"])
    share_clip, se_clip = share_se(clip["finite"], clip["runs"])
    name = f"{config.clip_activation}, {INIT_LABELS[config.clip_init]}"
    group = f"clipping ({name}, {config.clip_depth} layers of {config.clip_width}, momentum on digits)"
    out.append(
        number(
            "finite/plain",
            "runs whose loss stays finite, without clipping",
            share_plain,
            se=se_plain,
            group=group,
        )
    )
    out.append(
        number(
            "finite/clipped",
            f"runs whose loss stays finite, clip_norm {config.clip_norm:g}",
            share_clip,
            se=se_clip,
            group=group,
        )
    )
    difference_se = math.hypot(se_plain, se_clip)
    last = clip["final"]
    out.append(
        exceeds(
            "clipping",
            "share of runs that stay finite: with clipping minus without",
            share_clip - share_plain,
            0.0,
            se=difference_se,
            group=group,
            key=True,
            if_pass=f"Clipping tamed the wild moves: {clip['finite']} of {clip['runs']} clipped runs kept a "
            f"finite loss over {config.clip_steps} steps (final loss median {np.nanmedian(last):.3g}), "
            "against "
            f"{plain['finite']} of {plain['runs']} without.",
            if_fail=f"Clipping did not measurably change divergence: {clip['finite']} of {clip['runs']} "
            f"clipped runs stayed finite against {plain['finite']} of {plain['runs']} without.",
        )
    )
    return out


def _figure(config: Config, measured: list[dict], clipped: dict):
    """Per-layer mean squared gradient over depth (theory dashed), measured factor against chi, and the
    clipped and unclipped training losses."""
    fig, axes = subplots(1, 3, height=4.6, gridspec_kw={"width_ratios": [1.3, 1.0, 1.0]})
    ax = axes[0]
    layers = np.arange(1, config.depth + 1)
    styles = {"xavier": "-", "he": "--", "0.5-critical": ":", "4-critical": "-."}
    for m in measured:
        mean_sq = m["mean_sq"] / m["mean_sq"][-1]
        theory = np.concatenate([np.cumprod(m["chi"][:-1][::-1])[::-1], [1.0]])
        color = COLORS[m["activation"]]
        ax.semilogy(
            layers,
            mean_sq,
            styles[m["init"]],
            color=color,
            lw=1.4,
            label=f"{m['activation']} {INIT_LABELS[m['init']]}",
        )
        ax.semilogy(layers, theory, "o", color=color, ms=2.5, alpha=0.6)
    ax.set_xlabel("hidden layer (1: next to the input)")
    ax.set_ylabel("mean |dL/dh|^2 / last layer's")
    ax.set_title("gradients over depth (dots: mean-field theory)", fontsize=10)
    ax.legend(fontsize=9, ncol=2, loc="best")
    ax.grid(alpha=0.3, which="both")

    ax = axes[1]
    for m in measured:
        ax.errorbar(
            [m["theory"]],
            [m["factor"]],
            yerr=[3 * m["se"]],
            fmt="o",
            color=COLORS[m["activation"]],
            ms=4,
            capsize=3,
        )
    grid = np.geomspace(
        min(m["theory"] for m in measured) * 0.8, max(m["theory"] for m in measured) * 1.25, 10
    )
    ax.loglog(grid, grid, "k-", lw=0.8)
    ax.axhline(1.0, color="gray", lw=0.6, ls=":")
    ax.set_xlabel("mean-field chi (geometric mean over layers)")
    ax.set_ylabel("measured per-layer factor (bars: 3 SE)")
    ax.set_title("measured against theory", fontsize=10)
    ax.grid(alpha=0.3, which="both")

    ax = axes[2]
    for i, (clip, color, label) in enumerate(
        ((False, "tab:red", "no clipping"), (True, "tab:blue", f"clip_norm {config.clip_norm:g}"))
    ):
        c = clipped[clip]
        runs = np.arange(c["runs"])
        ax.semilogy(runs + 0.15 * i, c["start"], "o", mfc="none", color=color, ms=6)
        ok = c["diverged"] < 0
        ax.semilogy(runs[ok] + 0.15 * i, c["final"][ok], "o", color=color, ms=6, label=f"{label}: final")
        if (~ok).any():
            ax.semilogy(
                runs[~ok] + 0.15 * i, c["start"][~ok], "x", color=color, ms=9, label=f"{label}: diverged"
            )
    ax.set_xlabel(f"network (open: loss at step 0; after {config.clip_steps} steps: filled)")
    ax.set_ylabel("training loss")
    ax.set_title(f"{config.clip_activation} {INIT_LABELS[config.clip_init]}: clipping", fontsize=10)
    ax.legend(fontsize=9)
    ax.grid(alpha=0.3, which="both")
    return finish(fig)
