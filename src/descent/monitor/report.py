"""The monitor's outputs: the live one-line summary, the rows as CSV and JSON (`descent._json`), a
figure (matplotlib, Agg) and a short report in Markdown and HTML."""

from __future__ import annotations

import csv
import html
import io
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from descent._json import numbers_out

Row = dict[str, Any]


def summary_line(row: Row) -> str:
    """``step 500 | loss 0.231 | |g| 0.5 | T 3.1e-05 | S 12.3 / edge 20 | lr 0.1 -> 0.081 | healthy``
    (``->``: the lr the diagnosis advises)."""
    return (
        f"step {row['step']} | loss {row['loss']:.4g} | |g| {row['grad_norm']:.3g} "
        f"| T {row['temperature']:.3g} | S {row['sharpness']:.4g} / edge {row['edge']:.4g} "
        f"| lr {row['lr']:.3g} -> {row['advised_lr']:.3g} | {row['diagnosis']}"
    )


def write_report(
    out: Path, rows: Sequence[Row], columns: Sequence[str], notes: Sequence[str]
) -> dict[str, Path]:
    """``monitor.csv``, ``monitor.json``, ``monitor.png`` (if any rows), ``monitor.md``, ``monitor.html``."""
    out.mkdir(parents=True, exist_ok=True)
    files = {"csv": out / "monitor.csv", "json": out / "monitor.json", "md": out / "monitor.md"}
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    files["csv"].write_text(text.getvalue())
    files["json"].write_text(
        json.dumps(numbers_out({"notes": list(notes), "rows": list(rows)}), indent=1) + "\n"
    )
    if rows:
        files["png"] = figure(rows, out / "monitor.png")
    markdown = report_markdown(rows, notes, "monitor.png" if rows else None)
    files["md"].write_text(markdown)
    files["html"] = out / "monitor.html"
    files["html"].write_text(report_html(rows, notes, "monitor.png" if rows else None))
    return files


def _verdicts(rows: Sequence[Row]) -> list[tuple[int, int, str, str]]:
    """Runs of equal diagnoses: (first step, last step, name, the last advice)."""
    runs: list[tuple[int, int, str, str]] = []
    for row in rows:
        if runs and runs[-1][2] == row["diagnosis"]:
            runs[-1] = (runs[-1][0], row["step"], row["diagnosis"], row["advice"])
        else:
            runs.append((row["step"], row["step"], row["diagnosis"], row["advice"]))
    return runs


def _span(first: int, last: int) -> str:
    return str(first) if first == last else f"{first}-{last}"


def _facts(rows: Sequence[Row]) -> list[str]:
    last = rows[-1]
    return [
        f"optimizer: {last['rule']}, lr {last['lr']:.4g}, momentum {last['momentum']:.3g} (friction "
        f"{last['friction']:.3g}, time step {last['time_step']:.3g}, "
        f"effective lr {last['effective_lr']:.4g})",
        f"batch size {last['batch_size']}, {last['parameters']} parameters",
        f"temperature {last['temperature']:.4g} +- {last['temperature_se']:.2g} (noise floor d*T/2 = "
        f"{last['noise_floor']:.4g} against loss {last['loss']:.4g})",
        f"kinetic temperature {last['kinetic_temperature']:.4g}, "
        f"configurational {last['config_temperature']:.4g}",
        f"sharpness {last['sharpness']:.4g} against the edge {last['edge']:.4g} ({last['edge_math']}); "
        f"edge lr {last['edge_lr']:.4g}, suggested lr {last['suggested_lr']:.4g}",
        f"monitor time {sum(r['seconds'] for r in rows):.3g} s over {len(rows)} checks",
    ]


def report_markdown(rows: Sequence[Row], notes: Sequence[str], image: str | None) -> str:
    if not rows:
        return "# Training monitor\n\nNo checks yet.\n"
    lines = ["# Training monitor", "", f"**Diagnosis at step {rows[-1]['step']}**: {rows[-1]['advice']}", ""]
    lines += [f"- {fact}" for fact in _facts(rows)] + [f"- note: {note}" for note in notes]
    lines += ["", "| steps | diagnosis | advice (at the last of these steps) |", "|---|---|---|"]
    lines += [f"| {_span(a, b)} | {name} | {advice} |" for a, b, name, advice in _verdicts(rows)]
    if image:
        lines += ["", f"![monitor]({image})"]
    return "\n".join(lines) + "\n"


#: the HTML report's style: a readable column of text, the table's cells ruled and padded, the
#: figure no wider than the window
STYLE = (
    "body{font-family:sans-serif;max-width:75em;margin:1em auto;padding:0 1em;line-height:1.4}"
    "table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #ccc;padding:.3em .6em;"
    "text-align:left;vertical-align:top}td:first-child{white-space:nowrap}img{max-width:100%;height:auto}"
)


def report_html(rows: Sequence[Row], notes: Sequence[str], image: str | None) -> str:
    if not rows:
        return "<!doctype html><title>Training monitor</title><p>No checks yet.</p>\n"
    e = html.escape
    items = "".join(f"<li>{e(fact)}</li>" for fact in [*_facts(rows), *(f"note: {n}" for n in notes)])
    table = "".join(
        f"<tr><td>{_span(a, b)}</td><td>{e(name)}</td><td>{e(advice)}</td></tr>"
        for a, b, name, advice in _verdicts(rows)
    )
    picture = f'<img src="{e(image)}" alt="monitor" width="900">' if image else ""
    return (
        f"<!doctype html><meta charset=utf-8><title>Training monitor</title><style>{STYLE}</style>"
        "<h1>Training monitor</h1>"
        f"<p><b>Diagnosis at step {rows[-1]['step']}</b>: {e(rows[-1]['advice'])}</p><ul>{items}</ul>"
        "<table><tr><th>steps</th><th>diagnosis</th><th>advice (at the last of these steps)</th></tr>"
        f"{table}</table>{picture}\n"
    )


def figure(rows: Sequence[Row], path: Path) -> Path:
    """Six panels against step: losses, sharpness and edge, temperatures, lr and suggested lr,
    gradient norm and noise floor, the cosine of successive updates."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [r["step"] for r in rows]

    def column(name: str) -> list[float]:
        return [r[name] if math.isfinite(r[name]) else math.nan for r in rows]

    panels = (
        ("loss", (("loss", "batch loss (potential)"), ("held_loss", "held loss")), True),
        ("sharpness", (("sharpness", "sharpness S"), ("edge", "edge E")), False),
        (
            "temperature",
            (
                ("temperature", "noise T"),
                ("kinetic_temperature", "kinetic"),
                ("config_temperature", "configurational"),
            ),
            True,
        ),
        ("learning rate", (("lr", "lr"), ("suggested_lr", "suggested"), ("edge_lr", "edge lr")), True),
        ("gradient", (("grad_norm", "|g| (held)"), ("noise_floor", "noise floor d T/2")), True),
        ("successive updates", (("update_cosine", "cosine"),), False),
    )
    fig, axes = plt.subplots(2, 3, figsize=(12, 6), layout="constrained")
    for ax, (title, series, log) in zip(axes.flat, panels):
        for name, label in series:
            values = column(name)
            if any(math.isfinite(v) for v in values):
                ax.plot(steps, values, label=label)
        if log and any(math.isfinite(v) and v > 0 for name, _ in series for v in column(name)):
            ax.set_yscale("log")
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("step", fontsize=9)
        ax.tick_params(labelsize=8)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    try:
        fig.savefig(path, dpi=100)
    finally:
        plt.close(fig)
    return path
