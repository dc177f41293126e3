"""`descent report`: run the experiments and gather them into one self-contained HTML page.

``build_report(out)`` runs every experiment of `EXPERIMENT_NAMES` (or ``names``) and writes everything
into the folder ``out`` and nowhere else: ``out/report.html`` and, beside it, per experiment
``NAME.json`` (`Result.to_dict()` plus ``quick`` and ``runtime_s``; `Result.from_dict` reads it back)
and ``NAME.png`` (its first figure; ``NAME-2.png``... for further ones). An experiment that raises
does not stop the report: its card shows the error, its JSON holds ``error`` and ``traceback``.
Interrupted (Ctrl-C), the report still writes the page for the experiments that finished, then lets
the interruption through.

The page is one card per claim: the claim in the seeds' words, the verdict, the first figure (inline
as a base64 PNG, shown at its own size or smaller; a click enlarges it), the key rows each beside its
theory with the deviation in standard errors, pass or fail and the check's power, the protocol, the
explanation, and folded away the full table (grouped, claim checks apart from instrument checks), the
runs and the configuration. Inline CSS and a few lines of inline script, no external resource.

>>> import tempfile
>>> page = build_report(tempfile.mkdtemp(), quick=True, names=["plateau-momentum"])
>>> page.name, sorted(p.name for p in page.parent.iterdir())
('report.html', ['plateau-momentum.json', 'plateau-momentum.png', 'report.html'])
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import math
import re
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from descent.experiments._base import Result, Row, dumps, plain
from descent.experiments.figures import DPI

Progress = Callable[[int, int], None]
PAGE = "report.html"
DEFAULT_OUT = Path("out/report")
VERDICT_COLORS = {
    "held": "#1a7f37",
    "partly held": "#9a6700",
    "did not hold": "#cf222e",
    "error": "#57606a",
}
MAX_WIDTH_PX = 1400
FALLBACK_KEYS = 4  # key rows shown for a result that marks none
LIST_SHOWN = 6  # a longer list is shortened to "N values: first ... last"


@dataclass
class Entry:
    """One experiment's slot in the report: its result, or the error it raised."""

    name: str
    claim: str = ""
    result: Result | None = None
    error: str | None = None
    trace: str | None = None
    seconds: float = 0.0
    pngs: list[bytes] = field(default_factory=list)
    figure_error: str | None = None

    @property
    def verdict(self) -> str:
        if self.result is None:
            return "error"
        try:
            return self.result.verdict
        except ValueError:  # no claim check: no verdict
            return "error"

    @property
    def anchor(self) -> str:
        return "exp-" + "".join(c if c.isalnum() else "-" for c in self.name)


# --- building ----------------------------------------------------------------------------------
def build_report(
    out: Path | str = DEFAULT_OUT,
    quick: bool = False,
    progress: Progress | None = None,
    names: Iterable[str] | None = None,
) -> Path:
    """Run the experiments (full size, or ``quick``) and write the page and each experiment's JSON and
    PNG into the folder ``out``; return the page's path. ``progress(done, total)`` after each one."""
    from descent import experiments

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    chosen = list(experiments.EXPERIMENT_NAMES if names is None else names)
    entries: list[Entry] = []
    started = time.perf_counter()
    if progress is not None:
        progress(0, len(chosen))
    try:
        for done, name in enumerate(chosen, start=1):
            entry = _run_one(experiments, name, quick)
            _write_files(entry, out, quick)
            entries.append(entry)
            if progress is not None:
                progress(done, len(chosen))
    except KeyboardInterrupt:
        _write_page(out, entries, quick, time.perf_counter() - started, len(chosen))
        raise
    return _write_page(out, entries, quick, time.perf_counter() - started, len(chosen))


def _write_page(out: Path, entries: list[Entry], quick: bool, seconds: float, planned: int) -> Path:
    path = out / PAGE
    path.write_text(render_html(entries, quick=quick, seconds=seconds, planned=planned), encoding="utf-8")
    return path


def _run_one(experiments: Any, name: str, quick: bool) -> Entry:
    start = time.perf_counter()
    entry = Entry(name, claim=_claim_of(name))
    try:
        result = experiments.run_experiment(name, quick=quick)
        if not isinstance(result, Result):
            raise TypeError(f"run() returned {type(result).__name__}, expected a Result")
    except Exception as error:  # noqa: BLE001 - one broken experiment must not sink the report
        entry.error = f"{type(error).__name__}: {error}"
        entry.trace = traceback.format_exc()
        entry.seconds = time.perf_counter() - start
        return entry
    entry.result, entry.claim = result, result.claim or entry.claim
    entry.seconds = time.perf_counter() - start
    try:
        entry.pngs = [result.figure_png(i, dpi=DPI) for i in range(len(result.figures))]
    except Exception as error:  # noqa: BLE001 - the numbers stand without the figure
        entry.figure_error = f"{type(error).__name__}: {error}"
    for figure in result.figures:
        _close(figure)
    return entry


def _write_files(entry: Entry, out: Path, quick: bool) -> None:
    """``NAME.json`` and ``NAME.png`` (``NAME-2.png``... for further figures) into ``out``."""
    payload: dict[str, Any] = {"name": entry.name, "quick": quick, "runtime_s": round(entry.seconds, 3)}
    if entry.result is not None:
        try:
            payload.update(entry.result.to_dict())
        except Exception as error:  # noqa: BLE001 - e.g. a result without claim checks
            payload.update({"claim": entry.claim, "verdict": "error"})
            payload["error"] = f"could not write the result: {type(error).__name__}: {error}"
        for index, png in enumerate(entry.pngs):
            suffix = "" if index == 0 else f"-{index + 1}"
            (out / f"{entry.name}{suffix}.png").write_bytes(png)
    else:
        payload.update(
            {"claim": entry.claim, "protocol": "", "verdict": "error", "rows": []},
            error=entry.error,
            traceback=entry.trace,
        )
    (out / f"{entry.name}.json").write_text(dumps(plain(payload)), encoding="utf-8")


# --- the page ----------------------------------------------------------------------------------
CSS = """
*, *::before, *::after { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body { margin: 0; background: #f3f4f6; color: #1f2328; overflow-wrap: anywhere;
       font: 16px/1.55 -apple-system, "Segoe UI", "Helvetica Neue", Helvetica, Arial, sans-serif; }
main { max-width: 1400px; margin: 0 auto; padding: 24px 16px 48px; }
h1 { font-size: 1.9rem; line-height: 1.25; margin: 0 0 .3em; }
h2 { font-size: 1.4rem; line-height: 1.3; margin: 0; }
h3 { font-size: 1rem; margin: 1.4em 0 .5em; color: #424a53; text-transform: uppercase;
     letter-spacing: .04em; }
p { margin: .6em 0; max-width: 75em; }
a { color: #0550ae; }
code, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .9em; }
.meta { color: #57606a; font-size: .95rem; }
.legend { font-size: .9rem; color: #424a53; }
.banner { border-radius: 8px; padding: 12px 16px; margin: 16px 0; font-weight: 600; }
.banner.stop { background: #fff8c5; border: 1px solid #d4a72c; }
.alarm { background: #ffebe9; border: 2px solid #cf222e; color: #82071e; border-radius: 8px;
         padding: 12px 16px; margin: 14px 0; }
.alarm strong { font-size: 1.05rem; }
.alarm ul { margin: .4em 0 0; padding-left: 1.3em; }
.badge { display: inline-block; padding: 2px 12px; border-radius: 999px; color: #fff; font-weight: 600;
         font-size: .85rem; line-height: 1.6; white-space: nowrap; vertical-align: middle; }
.tag { display: inline-block; padding: 0 7px; border-radius: 4px; font-size: .75rem; font-weight: 600;
       line-height: 1.6; white-space: nowrap; vertical-align: 1px; margin-left: 4px; }
.tag.claim { background: #ddf4ff; color: #0550ae; }
.tag.instrument { background: #eee6ff; color: #5a32a3; }
.tag.bad { background: #ffebe9; color: #82071e; }
.pass { color: #1a7f37; font-weight: 700; }
.fail { color: #cf222e; font-weight: 700; }
.summary { background: #fff; border: 1px solid #d0d7de; border-radius: 10px; padding: 6px 0;
           margin: 20px 0 28px; }
.summary ol { list-style: none; margin: 0; padding: 0; }
.summary li { display: grid; grid-template-columns: 9.5em 14em minmax(0, 1fr) auto; gap: 12px;
              align-items: baseline; padding: 7px 16px; border-top: 1px solid #eaeef2; }
.summary li:first-child { border-top: 0; }
.summary .claimline { color: #424a53; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.summary .badge { justify-self: start; }
.summary .count { color: #57606a; font-size: .9rem; white-space: nowrap; }
.card { background: #fff; border: 1px solid #d0d7de; border-left: 6px solid var(--verdict);
        border-radius: 10px; padding: 20px 24px; margin: 0 0 28px; }
.card-head { display: flex; flex-wrap: wrap; gap: 8px 14px; align-items: center; }
.card-head .time { color: #57606a; font-size: .9rem; margin-left: auto; }
blockquote.claim { margin: 14px 0; padding: 8px 16px; border-left: 4px solid #d0d7de; background: #f6f8fa;
                   font-size: 1.08rem; font-style: italic; color: #1f2328; border-radius: 0 6px 6px 0; }
figure { margin: 16px 0; }
figure a.zoom { display: inline-block; max-width: 100%; cursor: zoom-in; }
figure img { display: block; max-width: 100%; height: auto; border: 1px solid #eaeef2; border-radius: 4px; }
figcaption { font-size: .85rem; color: #57606a; margin-top: 4px; }
.keys { display: grid; grid-template-columns: repeat(auto-fill, minmax(min(100%, 300px), 1fr)); gap: 12px;
        margin: 12px 0; }
.key { border: 1px solid #d0d7de; border-radius: 8px; padding: 10px 14px; background: #fbfcfd; }
.key.failed { border-color: #cf222e; background: #fff8f7; }
.key .label { font-size: .9rem; color: #424a53; }
.key .values { margin: 4px 0; font-size: 1.05rem; }
.key .measured { font-size: 1.45rem; font-weight: 650; font-variant-numeric: tabular-nums; }
.key .se { color: #57606a; }
.key .theory { white-space: nowrap; color: #424a53; }
.key .facts { font-size: .85rem; color: #57606a; }
details { margin: 10px 0; border: 1px solid #d0d7de; border-radius: 8px; background: #fff; }
details > summary { cursor: pointer; padding: 8px 14px; font-weight: 600; color: #24292f; }
details[open] > summary { border-bottom: 1px solid #d0d7de; }
details > .inner { padding: 4px 14px 12px; }
.scroll { max-width: 100%; overflow-x: auto; }
table { border-collapse: collapse; font-size: .9rem; margin: 8px 0; width: 100%; }
th, td { border-bottom: 1px solid #eaeef2; padding: 5px 8px; text-align: left; vertical-align: top; }
thead th { background: #f6f8fa; border-bottom: 1px solid #d0d7de; white-space: nowrap; }
tr.group th { background: #f6f8fa; color: #424a53; font-weight: 600; padding-top: 10px; }
td.num { font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.failed td { background: #fff8f7; }
table.kv { width: auto; max-width: 100%; }
table.kv th { font-weight: 600; color: #424a53; }
pre { background: #f6f8fa; padding: 10px; font-size: .8rem; white-space: pre-wrap; overflow-wrap: anywhere; }
.error { color: #82071e; }
#zoom { position: fixed; inset: 0; z-index: 10; display: none; background: rgba(15, 18, 22, .88);
        overflow: auto; cursor: zoom-out; padding: 2vh 2vw; }
#zoom.open { display: block; }
#zoom img { display: block; margin: 0 auto; background: #fff; max-width: none; }
#zoom p { color: #fff; text-align: center; margin: 8px 0 0; }
#zoom p a { color: #9ecbff; }
@media (max-width: 720px) {
  main { padding: 14px 10px 32px; }
  .card { padding: 14px 12px; }
  .summary li { grid-template-columns: auto minmax(0, 1fr); gap: 4px 10px; }
  .summary .claimline, .summary .count { grid-column: 1 / -1; white-space: normal; }
}
"""

SCRIPT = """
(function () {
  var zoom = document.getElementById('zoom'), big = zoom.querySelector('img'),
      file = zoom.querySelector('a');
  document.querySelectorAll('a.zoom').forEach(function (link) {
    link.addEventListener('click', function (event) {
      event.preventDefault();
      var img = link.querySelector('img');
      var fit = Math.min(window.innerWidth * 0.96, window.innerHeight * 0.9 * img.naturalWidth /
                                                   Math.max(1, img.naturalHeight));
      big.src = img.src; big.alt = img.alt;
      big.style.width = Math.round(Math.max(img.naturalWidth, fit)) + 'px';
      file.href = link.getAttribute('href'); file.textContent = link.getAttribute('href');
      zoom.classList.add('open');
    });
  });
  zoom.addEventListener('click', function (event) {
    if (event.target.tagName !== 'A') { zoom.classList.remove('open'); }
  });
  document.addEventListener('keydown', function (event) {
    if (event.key === 'Escape') { zoom.classList.remove('open'); }
  });
})();
"""


def render_html(entries: list[Entry], quick: bool = False, seconds: float = 0.0, planned: int = 0) -> str:
    """The whole page for ``entries`` (pure: no files are read or written). ``planned``: how many
    experiments were to run (more than ``len(entries)`` when interrupted)."""
    from descent import __version__

    counts = {v: sum(e.verdict == v for e in entries) for v in VERDICT_COLORS}
    tally = ", ".join(f"{n} {v}" for v, n in counts.items() if n)
    stamp = _dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>descent: the seeds' claims, measured</title>",
        f"<style>{CSS}</style></head><body><main>",
        '<header><h1>The seeds\' claims, measured</h1><p class="meta">',
        f"descent {_e(__version__)} &middot; {'quick' if quick else 'full'} size &middot; "
        f"{len(entries)} experiments: {_e(tally or 'none')} &middot; {_duration(seconds)} &middot; "
        f"{_e(stamp)}</p>",
        '<p class="legend">Each card states a claim in the seeds\' words and tests it. The verdict '
        "follows from the claim checks alone: <b>held</b> when every one passed, <b>partly held</b> when "
        "some did, <b>did not hold</b> when none did. <b>Instrument checks</b> compare the simulation "
        "with closed-form results; if one fails, the measurement itself is wrong and the card says so. "
        "<b>Deviation</b> is measured minus theory in standard errors (SE) of the run's own sample, or "
        "relative to theory where a number has no SE. <b>Power</b> is the smallest shift of the theory "
        "value, relative to it, that the check would detect (with about 95 % probability). Each "
        "experiment's numbers and figure are also in <code>NAME.json</code> and <code>NAME.png</code> in "
        "this page's folder.</p></header>",
    ]
    if planned > len(entries):
        parts.append(
            f'<div class="banner stop">Interrupted: {len(entries)} of {planned} experiments finished; '
            "the others did not run.</div>"
        )
    parts.append(_summary(entries))
    for entry in entries:
        try:
            parts.append(_card(entry))
        except Exception as error:  # noqa: BLE001 - a card that cannot render still says so
            parts.append(_error_card(entry, f"the report could not show this result: {_one_line(error)}"))
    parts += [
        '<div id="zoom" role="dialog" aria-label="enlarged figure"><img alt="">',
        "<p>Click or press Escape to close &middot; the file: <a>figure</a></p></div>",
        f"</main><script>{SCRIPT}</script></body></html>",
    ]
    return "\n".join(parts)


def _summary(entries: list[Entry]) -> str:
    items = []
    for entry in entries:
        if entry.result is None or entry.verdict == "error":
            count = "did not run" if entry.result is None else "no claim check"
        else:
            claim = entry.result.claim_checks
            count = f"{sum(bool(r.passed) for r in claim)} of {len(claim)} claim checks passed"
            if any(not r.passed for r in entry.result.theory_checks):
                count += ' <span class="tag bad">instrument failed</span>'
        items.append(
            f'<li>{_badge(entry.verdict)}<a href="#{entry.anchor}">{_e(entry.name)}</a>'
            f'<span class="claimline" title="{_e(entry.claim)}">{_e(entry.claim)}</span>'
            f'<span class="count">{count}</span></li>'
        )
    return f'<nav class="summary" aria-label="summary"><ol>{"".join(items)}</ol></nav>'


def _card_head(entry: Entry) -> str:
    colour = VERDICT_COLORS.get(entry.verdict, VERDICT_COLORS["error"])
    return (
        f'<section class="card" id="{entry.anchor}" style="--verdict:{colour}">'
        f'<div class="card-head"><h2>{_e(entry.name)}</h2>{_badge(entry.verdict)}'
        f'<span class="time">ran in {_duration(entry.seconds)}</span></div>'
        + (f'<blockquote class="claim">{_e(entry.claim)}</blockquote>' if entry.claim else "")
    )


def _error_card(entry: Entry, message: str) -> str:
    parts = [
        _card_head(entry),
        f'<div class="alarm"><strong>This experiment did not finish.</strong> '
        f"{_e(_clip(message, 400))}</div>",
    ]
    if entry.trace:
        parts.append(_fold("The traceback", f"<pre>{_e(entry.trace)}</pre>"))
    return "\n".join(parts) + "</section>"


def _card(entry: Entry) -> str:
    r = entry.result
    if r is None:
        return _error_card(entry, entry.error or "it raised an error")
    if entry.verdict == "error":
        return _error_card(entry, "its result has no claim check, so it has no verdict")
    parts = [_card_head(entry)]
    failed_instrument = [row for row in r.theory_checks if not row.passed]
    if failed_instrument:
        parts.append(
            f'<div class="alarm"><strong>The instrument failed:</strong> {len(failed_instrument)} of '
            f"{len(r.theory_checks)} instrument checks (the simulation against closed-form results) "
            "failed, so the measurement is wrong and the verdict cannot be trusted until it is fixed."
            "<ul>" + "".join(f"<li>{_e(row.label)}</li>" for row in failed_instrument) + "</ul></div>"
        )
    parts.append(_figure(entry))
    parts.append("<h3>Key numbers</h3>")
    parts.append('<div class="keys">' + "".join(_key_tile(row) for row in key_rows(r)) + "</div>")
    if r.protocol:
        parts.append(f"<p><b>Protocol.</b> {_e(r.protocol)}</p>")
    if r.explanation:
        parts.append(f"<p><b>What the checks say.</b> {_e(r.explanation)}</p>")
    claim, theory = r.claim_checks, r.theory_checks
    counts = f"{len(r.rows)} rows; {sum(bool(x.passed) for x in claim)} of {len(claim)} claim checks passed"
    if theory:
        counts += f", {sum(bool(x.passed) for x in theory)} of {len(theory)} instrument checks"
    parts.append(_fold(f"All numbers ({counts})", _rows_table(r)))
    if r.specs:
        parts.append(_fold(f"Runs ({len(r.specs)})", _runs_table(r.specs)))
    if r.config:
        parts.append(_fold("Configuration", _config_table(r.config)))
    return "\n".join(parts) + "</section>"


def _figure(entry: Entry) -> str:
    """The card's first figure, and the others folded under it."""
    if entry.pngs:
        more = f" ({len(entry.pngs) - 1} more below, folded)" if len(entry.pngs) > 1 else ""
        caption = f"<figcaption>Click the figure to enlarge it{more}.</figcaption>"
        shown = _figure_html(entry.pngs[0], entry.name, f"figure of {entry.name}", caption)
        extra = [
            _figure_html(png, f"{entry.name}-{index}", f"figure {index} of {entry.name}")
            for index, png in enumerate(entry.pngs[1:], start=2)
        ]
        return shown + (_fold(f"More figures ({len(extra)})", "".join(extra)) if extra else "")
    if entry.figure_error:
        return f'<p class="error">The figure could not be drawn: {_e(_clip(entry.figure_error, 300))}</p>'
    return ""


def _figure_html(png: bytes, name: str, alt: str, caption: str = "") -> str:
    """One figure inline at its own size, linked to ``name.png`` in the report's folder (to enlarge)."""
    width, height = _png_size(png)
    data = base64.b64encode(png).decode("ascii")
    return (
        f'<figure><a class="zoom" href="{_e(name)}.png" title="enlarge">'
        f'<img src="data:image/png;base64,{data}" width="{width}" height="{height}" alt="{_e(alt)}"></a>'
        f"{caption}</figure>"
    )


def key_rows(result: Result) -> list[Row]:
    """The rows a card shows up front: those marked ``key``; for a result that marks none, the first
    numbers with a theory value, else its first claim checks."""
    keys = [row for row in result.rows if row.key]
    if keys:  # and every failed claim check: a reader sees why a verdict is not "held"
        return keys + [row for row in result.claim_checks if not row.passed and not row.key]
    with_theory = [row for row in result.rows if row.theory is not None]
    return with_theory[:FALLBACK_KEYS] or result.claim_checks[:FALLBACK_KEYS] or result.rows[:FALLBACK_KEYS]


def _key_tile(row: Row) -> str:
    failed = row.is_check and not row.passed
    label = _e(row.label) + _kind_tag(row)
    values = f'<span class="measured">{_e(_num(row.value))}</span>'
    if row.se:
        values += f' <span class="se">&plusmn; {_e(_num(row.se, 2))}</span>'
    if row.unit:
        values += f" {_e(row.unit)}"
    if row.theory is not None:
        values += f' <span class="theory">&nbsp;vs {row.reference} <b>{_e(_num(row.theory))}</b></span>'
    else:
        values += ' <span class="theory">&nbsp;(no theory value)</span>'
    facts = []
    deviation = _deviation(row)
    if deviation:
        facts.append(f"deviation {deviation}")
    if row.criterion:
        facts.append(_e(_criterion(row.criterion)))
    if row.is_check:
        facts.append(_verdict_word(row))
        facts.append(_e(_power_words(row)))
    return (
        f'<div class="key{" failed" if failed else ""}"><div class="label">{label}</div>'
        f'<div class="values">{values}</div><div class="facts">{" &middot; ".join(facts)}</div></div>'
    )


def _rows_table(result: Result) -> str:
    head = (
        '<div class="scroll"><table class="rows"><thead><tr><th>quantity</th><th>measured (&plusmn; SE)</th>'
        "<th>theory or bound</th><th>deviation</th><th>criterion</th><th>result</th><th>power</th></tr>"
        "</thead><tbody>"
    )
    groups: dict[str, list[Row]] = {}
    for row in result.rows:
        groups.setdefault(row.group, []).append(row)
    body = []
    for group, rows in groups.items():
        if len(groups) > 1 or group:
            body.append(f'<tr class="group"><th colspan="7">{_e(group or "other numbers")}</th></tr>')
        for row in rows:
            measured = _num(row.value) + (f" \u00b1 {_num(row.se, 2)}" if row.se else "")
            measured += f" {row.unit}" if row.unit else ""
            theory = "" if row.theory is None else f"{_num(row.theory)} ({row.reference})"
            result_cell = _verdict_word(row) if row.is_check else ""
            power = _percent(row.power) if row.is_check and row.power is not None else ""
            failed = ' class="failed"' if row.is_check and not row.passed else ""
            body.append(
                f"<tr{failed}>"
                f'<td>{_e(row.label)}{_kind_tag(row)}</td><td class="num">{_e(measured)}</td>'
                f'<td class="num">{_e(theory)}</td><td class="num">{_deviation(row)}</td>'
                f"<td>{_e(_criterion(row.criterion))}</td><td>{result_cell}</td>"
                f'<td class="num">{_e(power)}</td></tr>'
            )
    return head + "".join(body) + "</tbody></table></div>"


def _runs_table(specs: list[dict]) -> str:
    """One row per stored spec: its digest, objective, optimizer, particles and steps."""
    from descent.spec import RunSpec

    rows = []
    for data in specs:
        try:
            spec = RunSpec.from_dict(data)
            objective = spec.landscape + _params(spec.landscape_params)
            optimizer = spec.optimizer + _params(spec.hyper)
            cells = [spec.digest, objective, optimizer, spec.starts_count(), spec.steps]
        except Exception as error:  # noqa: BLE001 - a spec that does not load still shows
            cells = [f"not a valid spec: {_one_line(error)}", "", "", "", ""]
        rows.append(
            f'<tr><td class="mono">{_e(cells[0])}</td>'
            + "".join(f"<td>{_e(_value(c))}</td>" for c in cells[1:])
            + "</tr>"
        )
    return (
        '<p class="legend">Every run is stored with its spec in <code>NAME.json</code>; '
        "<code>descent run --spec</code> on that spec replays it exactly.</p>"
        '<div class="scroll"><table><thead><tr><th>spec digest</th><th>objective</th><th>optimizer</th>'
        "<th>particles</th><th>steps</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table></div>"
    )


def _config_table(config: dict[str, Any]) -> str:
    rows = "".join(
        f"<tr><th>{_e(key)}</th><td>{_e(_value(value))}</td></tr>" for key, value in _flat(config).items()
    )
    return f'<div class="scroll"><table class="kv"><tbody>{rows}</tbody></table></div>'


def _fold(title: str, inner: str) -> str:
    return f'<details><summary>{_e(title)}</summary><div class="inner">{inner}</div></details>'


# --- words and numbers -------------------------------------------------------------------------
def _kind_tag(row: Row) -> str:
    if not row.is_check:
        return ""
    if row.about == "theory":
        return '<span class="tag instrument">instrument check</span>'
    return '<span class="tag claim">claim check</span>'


def _verdict_word(row: Row) -> str:
    return '<span class="pass">pass</span>' if row.passed else '<span class="fail">fail</span>'


def _deviation(row: Row) -> str:
    if row.is_check and row.reference == "bound" and row.theory is not None:
        margin = row.value - row.theory  # a one-sided check: how far past (or short of) its bound
        if row.se:
            return _e(f"{_signed(margin / row.se, 2)} SE from the bound")
        return _e(f"{_signed(margin, 4)} from the bound")
    if row.deviation_se is not None:
        return _e(f"{_signed(row.deviation_se, 2)} SE")
    if row.relative_deviation is not None:
        if abs(row.relative_deviation) < 1e-5:
            return "&lt; 0.001 %"
        return _e(f"{_signed(100 * row.relative_deviation, 2)} %")
    return ""


def _power_words(row: Row) -> str:
    if row.power is None:
        return "power: not defined (theory 0)"
    if row.power == 0:
        return "detects any shift past the " + row.reference
    return f"detects a shift of {_percent(row.power)} of {row.reference}"


def _criterion(text: str) -> str:
    text = re.sub(r"(\d+(?:\.\d+)?)e([+-]?\d+)", lambda m: _num(float(m.group(0)), 6), text)
    return text.replace("<=", "\u2264").replace(">=", "\u2265").replace(" - ", " \u2212 ")


def _percent(share: float | None) -> str:
    if share is None:
        return ""
    return f"{_short(100 * share)} %"


def _signed(value: float, digits: int = 2) -> str:
    del digits
    text = _short(abs(value))
    return ("\u2212" if value < 0 else "+") + text if value != 0 else text


def _short(value: float) -> str:
    """Two significant digits, without a power of ten from 0.001 to 10⁶ (a deviation, a percentage)."""
    if math.isfinite(value) and 10 <= abs(value) < 1e6:
        return _num(float(f"{value:.2g}") if abs(value) < 100 else round(value), 6)
    if math.isfinite(value) and 1e-3 <= abs(value) < 10:
        return _num(float(f"{value:.2g}"), 6)
    return _num(value, 2)


def _num(value: Any, digits: int = 4) -> str:
    """A number for people: ``digits`` significant digits, integers as integers, powers of ten written
    out (1.2 × 10⁻⁵); non-finite as ∞, −∞, NaN."""
    if value is None:
        return "\u2014"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if not isinstance(value, (int, float)):
        return str(value)
    value = float(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "\u221e" if value > 0 else "\u2212\u221e"
    if value == 0:
        return "0"
    if value.is_integer() and abs(value) < 1e9:
        text = f"{int(abs(value)):,}".replace(",", "\u2009")
        return ("\u2212" if value < 0 else "") + text
    text = f"{value:.{digits}g}"
    if "e" in text:
        mantissa, exponent = text.split("e")
        power = str(int(exponent)).translate(
            str.maketrans("-0123456789", "\u207b\u2070\u00b9\u00b2\u00b3\u2074\u2075\u2076\u2077\u2078\u2079")
        )
        text = ("" if mantissa == "1" else f"{mantissa} \u00d7 ") + f"10{power}"
    return text.replace("-", "\u2212")


def _value(value: Any) -> str:
    """A configuration value as text: numbers as `_num`, lists joined (a long one as "N values:
    first ... last"), mappings as "key value" pairs; never Python's repr."""
    if isinstance(value, dict):
        return "; ".join(f"{k} {_value(v)}" for k, v in value.items()) or "none"
    if isinstance(value, (list, tuple)):
        if not value:
            return "none"
        if len(value) > LIST_SHOWN:
            return f"{len(value)} values: {_value(value[0])} \u2026 {_value(value[-1])}"
        if all(isinstance(v, (list, tuple, dict)) for v in value):
            return " | ".join(_value(v) for v in value)
        return ", ".join(_value(v) for v in value)
    if value is None:
        return "none"
    if isinstance(value, str):
        return _clip(value, 300)
    return _num(value)


def _params(params: dict[str, Any]) -> str:
    return f" ({_value(params)})" if params else ""


def _flat(mapping: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in mapping.items():
        if isinstance(value, dict) and value:
            out.update(_flat(value, f"{prefix}{key} / "))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _duration(seconds: float) -> str:
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def _png_size(png: bytes) -> tuple[int, int]:
    """Width and height in pixels from a PNG's header."""
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")


def _one_line(error: BaseException) -> str:
    return _clip(" ".join(f"{type(error).__name__}: {error}".split()), 300)


def _clip(text: str, limit: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def _badge(verdict: str) -> str:
    colour = VERDICT_COLORS.get(verdict, VERDICT_COLORS["error"])
    return f'<span class="badge" style="background:{colour}">{_e(verdict)}</span>'


def _claim_of(name: str) -> str:
    """The CLAIM of an experiment module (empty when even the import fails)."""
    try:
        from descent import experiments

        return str(experiments.get_experiment(name).CLAIM)
    except Exception:  # noqa: BLE001
        return ""


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _close(figure: Any) -> None:
    try:
        import matplotlib.pyplot as plt

        plt.close(figure)
    except Exception:  # noqa: BLE001
        pass


__all__ = ["DEFAULT_OUT", "PAGE", "VERDICT_COLORS", "Entry", "build_report", "key_rows", "render_html"]
