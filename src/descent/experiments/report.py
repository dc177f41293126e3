"""`descent report`: run the experiments and gather them into one self-contained HTML page.

``build_report(out)`` runs every experiment of `EXPERIMENT_NAMES` (or ``names``), each imported lazily.
One that raises does not stop the report: its section shows the error and traceback plainly, and the
summary table marks it ``error``. The page has inline CSS, figures as base64 PNG data URIs and no
external resources, so it can be mailed or archived as one file.

Beside the page, in ``out.parent / "report-data"``, each experiment leaves ``NAME.json`` (the full
`Result.to_dict()` plus ``runtime_s`` and ``quick``; for a failure ``error`` and ``traceback``) and
``NAME.png`` (its figure). Non-finite numbers are written as the strings ``"inf"``, ``"-inf"``,
``"nan"`` so the JSON stays standard. Each section lists the runs behind its numbers: one row per
stored spec with its digest (``RunSpec.from_dict(d).digest``), so any run can be found in
``NAME.json`` and replayed.

An experiment module may define ``KEY_NUMBERS``, a tuple of keys of ``Result.numbers`` to show in the
summary table; otherwise the first numbers that have a theory counterpart are shown.

>>> from pathlib import Path
>>> build_report(Path("out/report.html"), quick=True, names=["conditioning"])  # doctest: +SKIP
PosixPath('out/report.html')
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import json
import math
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from descent.experiments._base import Result, dumps
from descent.spec import RunSpec

Progress = Callable[[int, int], None]
DATA_DIR = "report-data"
VERDICT_COLORS = {"held": "#1a7f37", "partly held": "#b7791f", "did not hold": "#c53030", "error": "#5a5a5a"}
SUMMARY_NUMBERS = 3


@dataclass
class Entry:
    """One experiment's slot in the report: its result, or the error it raised."""

    name: str
    result: Result | None = None
    error: str | None = None
    trace: str | None = None
    seconds: float = 0.0
    key_numbers: tuple[str, ...] = ()
    png: bytes = b""
    figure_error: str | None = None

    @property
    def verdict(self) -> str:
        return self.result.verdict if self.result is not None else "error"


def build_report(
    out: Path | str,
    quick: bool = False,
    progress: Progress | None = None,
    names: Iterable[str] | None = None,
) -> Path:
    """Run the experiments (full size, or ``quick``), write the HTML page ``out`` and the JSON/PNG of
    each into ``out.parent / "report-data"``; ``progress(done, total)`` after each experiment."""
    from descent import experiments

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    data_dir = out.parent / DATA_DIR
    data_dir.mkdir(parents=True, exist_ok=True)
    chosen = list(experiments.EXPERIMENT_NAMES if names is None else names)
    entries: list[Entry] = []
    started = time.perf_counter()
    if progress is not None:
        progress(0, len(chosen))
    for done, name in enumerate(chosen, start=1):
        entries.append(_run_one(experiments, name, quick))
        _write_data(entries[-1], data_dir, quick)
        if progress is not None:
            progress(done, len(chosen))
    page = render_html(entries, quick=quick, seconds=time.perf_counter() - started)
    out.write_text(page, encoding="utf-8")
    return out


def _run_one(experiments: Any, name: str, quick: bool) -> Entry:
    start = time.perf_counter()
    try:
        module = experiments.get_experiment(name)
        result = experiments.run_experiment(name, quick=quick)
        if not isinstance(result, Result):
            raise TypeError(f"run() returned {type(result).__name__}, expected a Result")
    except Exception as error:  # noqa: BLE001 - one broken experiment must not sink the report
        return Entry(
            name,
            error=f"{type(error).__name__}: {error}",
            trace=traceback.format_exc(),
            seconds=time.perf_counter() - start,
        )
    entry = Entry(
        name,
        result=result,
        seconds=time.perf_counter() - start,
        key_numbers=tuple(getattr(module, "KEY_NUMBERS", ())),
    )
    try:
        entry.png = result.figure_png()
    except Exception as error:  # noqa: BLE001
        entry.figure_error = f"{type(error).__name__}: {error}"
    _close(result.figure)
    return entry


def _write_data(entry: Entry, data_dir: Path, quick: bool) -> None:
    payload: dict[str, Any] = {"name": entry.name, "quick": quick, "runtime_s": round(entry.seconds, 3)}
    if entry.result is not None:
        try:
            payload.update(entry.result.to_dict())
        except Exception as error:  # noqa: BLE001
            payload["error"] = f"could not serialise the result: {type(error).__name__}: {error}"
        if entry.png:
            (data_dir / f"{entry.name}.png").write_bytes(entry.png)
    else:
        payload.update({"verdict": "error", "error": entry.error, "traceback": entry.trace})
    (data_dir / f"{entry.name}.json").write_text(dumps(_clean(payload)), encoding="utf-8")


def _clean(value: Any) -> Any:
    """JSON-safe: tensors/arrays to lists, non-finite floats to strings, unknown objects to str."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if hasattr(value, "tolist"):
        return _clean(value.tolist())
    return str(value)


# --- HTML --------------------------------------------------------------------------------------
CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2em auto;
       max-width: 1200px; padding: 0 1em; color: #1f2328; line-height: 1.45; overflow-wrap: anywhere; }
h1 { margin-bottom: 0.2em; } h2 { margin-top: 2.2em; border-bottom: 1px solid #d0d7de; padding-bottom: .2em; }
.meta { color: #57606a; font-size: 0.9em; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.9em; max-width: 100%; }
th, td { border: 1px solid #d0d7de; padding: 4px 8px; text-align: left; vertical-align: top;
         overflow-wrap: anywhere; }
th { background: #f6f8fa; }
td.num { font-family: ui-monospace, Menlo, Consolas, monospace; max-width: 28em; }
.verdict { display: inline-block; padding: 1px 8px; border-radius: 10px; color: white; font-weight: 600;
           font-size: 0.85em; white-space: nowrap; }
.pass { color: #1a7f37; font-weight: 600; } .fail { color: #c53030; font-weight: 600; }
blockquote { margin: 0.5em 0; padding: 0.3em 1em; border-left: 4px solid #d0d7de; color: #3d444d; }
pre { background: #f6f8fa; padding: 0.8em; overflow-x: auto; font-size: 0.8em;
      white-space: pre-wrap; word-break: break-word; }
pre.error { background: #fff5f5; border: 1px solid #f5c2c2; color: #8b1a1a; }
img.figure { max-width: 100%; border: 1px solid #d0d7de; }
.small { font-size: 0.85em; color: #57606a; }
"""


def render_html(entries: list[Entry], quick: bool = False, seconds: float = 0.0) -> str:
    """The whole page for ``entries`` (pure: no files are read or written)."""
    from descent import __version__

    counts = {v: sum(e.verdict == v for e in entries) for v in VERDICT_COLORS}
    tally = ", ".join(f"{n} {v}" for v, n in counts.items() if n)
    stamp = _dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>descent: experiment report</title>",
        f"<style>{CSS}</style></head><body>",
        "<h1>descent: the seeds' claims, measured</h1>",
        f'<p class="meta">descent {_e(__version__)} &middot; {"quick" if quick else "full"} size &middot; '
        f"{len(entries)} experiments ({_e(tally)}) &middot; {seconds:.1f} s &middot; {_e(stamp)}. "
        f"Numbers and figures of each experiment are also in <code>{DATA_DIR}/NAME.json</code> and "
        f"<code>{DATA_DIR}/NAME.png</code> beside this page.</p>",
        "<h2>Summary</h2>",
        _summary_table(entries),
    ]
    for entry in entries:
        try:
            parts.append(_section(entry))
        except Exception as error:  # noqa: BLE001 - a section that cannot render still says so
            parts.append(
                f'<h2 id="{_anchor(entry.name)}">{_e(entry.name)}</h2>'
                f'<pre class="error">could not render this result: {_e(type(error).__name__)}: '
                f"{_e(str(error))}\n{_e(traceback.format_exc())}</pre>"
            )
    parts.append("</body></html>")
    return "\n".join(parts)


def _summary_table(entries: list[Entry]) -> str:
    rows = [
        "<table><tr><th>experiment</th><th>claim</th><th>verdict</th><th>key numbers</th>"
        "<th>checks</th><th>time</th></tr>"
    ]
    for entry in entries:
        if entry.result is not None:
            r = entry.result
            claim = _e(r.claim)
            passed = sum(bool(row.passed) for row in _checks(r))
            checks = f"{passed}/{len(_checks(r))} passed" if _checks(r) else "none"
            try:
                key = "<br>".join(_key_number_lines(entry))
            except Exception as error:  # noqa: BLE001
                key = f"(could not show: {_e(str(error))})"
        else:
            claim = _e(_claim_of(entry.name))
            checks = "-"
            key = f'<span class="fail">{_e(entry.error or "")}</span>'
        rows.append(
            f'<tr><td><a href="#{_anchor(entry.name)}">{_e(entry.name)}</a></td><td>{claim}</td>'
            f"<td>{_badge(entry.verdict)}</td><td>{key}</td><td>{checks}</td>"
            f'<td class="num">{entry.seconds:.1f} s</td></tr>'
        )
    rows.append("</table>")
    return "\n".join(rows)


def _key_number_lines(entry: Entry) -> list[str]:
    r = entry.result
    assert r is not None
    numbers, theory = _numbers(r), _theory(r)
    keys = [k for k in entry.key_numbers if k in numbers]
    if not keys:
        keys = [k for k in numbers if k in theory][:SUMMARY_NUMBERS] or list(numbers)[:SUMMARY_NUMBERS]
    lines = []
    for k in keys:
        line = f"{_e(k)}: <b>{_e(_fmt(numbers[k]))}</b>"
        if k in theory:
            line += f" (theory {_e(_fmt(theory[k]))})"
        lines.append(line)
    return lines


def _section(entry: Entry) -> str:
    head = f'<h2 id="{_anchor(entry.name)}">{_e(entry.name)} {_badge(entry.verdict)}</h2>'
    if entry.result is None:
        claim = _claim_of(entry.name)
        return "\n".join(
            [
                head,
                f"<blockquote>{_e(claim)}</blockquote>" if claim else "",
                f"<p><b>This experiment failed to run</b> after {entry.seconds:.1f} s; the other results are "
                "unaffected.</p>",
                f'<pre class="error">{_e(entry.error or "")}\n\n{_e(entry.trace or "")}</pre>',
            ]
        )
    r = entry.result
    parts = [
        head,
        f"<p><b>Claim.</b></p><blockquote>{_e(r.claim)}</blockquote>",
        f"<p><b>Verdict:</b> {_badge(r.verdict)} &nbsp; {_e(r.explanation)}</p>",
        "<h3>Numbers vs theory</h3>",
        _numbers_table(r),
    ]
    if _checks(r):
        rows = "".join(
            f'<tr><td>{_e(row.label)}</td><td class="{_pass(row.passed)}">{_pass(row.passed)}</td></tr>'
            for row in _checks(r)
        )
        parts += ["<h3>Checks</h3>", f"<table><tr><th>check</th><th>result</th></tr>{rows}</table>"]
    if entry.png:
        encoded = base64.b64encode(entry.png).decode("ascii")
        parts += [
            "<h3>Figure</h3>",
            f'<img class="figure" alt="figure of {_e(r.name)}" src="data:image/png;base64,{encoded}">',
        ]
    elif entry.figure_error:
        parts += ["<h3>Figure</h3>", f'<pre class="error">the figure failed: {_e(entry.figure_error)}</pre>']
    if r.specs:
        parts += ["<h3>Runs</h3>", _runs_table(r.specs)]
    parts += [
        "<h3>Configuration</h3>",
        f"<pre>{_e(json.dumps(_clean(r.config), indent=2))}</pre>",
        f'<p class="small">Ran in {entry.seconds:.1f} s. Data: <code>{DATA_DIR}/{_e(entry.name)}.json'
        "</code>.</p>",
    ]
    return "\n".join(parts)


def _numbers_table(r: Result) -> str:
    numbers, theory = _numbers(r), _theory(r)
    rows = ["<table><tr><th>quantity</th><th>measured</th><th>theory</th><th>relative difference</th></tr>"]
    for key in [*numbers, *(k for k in theory if k not in numbers)]:
        measured = numbers.get(key, "")
        expected = theory.get(key, "")
        rows.append(
            f'<tr><td>{_e(key)}</td><td class="num">{_e(_fmt(measured))}</td>'
            f'<td class="num">{_e(_fmt(expected))}</td>'
            f'<td class="num">{_e(_relative(measured, expected))}</td></tr>'
        )
    rows.append("</table>")
    return "\n".join(rows)


def _runs_table(specs: list[dict]) -> str:
    """One row per stored spec: its digest, objective, optimizer, particles, steps and what it saved."""
    rows = [
        "<table><tr><th>spec digest</th><th>objective</th><th>optimizer</th><th>particles</th>"
        "<th>steps</th><th>saved</th></tr>"
    ]
    for data in specs:
        try:
            spec = RunSpec.from_dict(data)
            cells = [spec.digest, spec.landscape, spec.optimizer, spec.starts_count(), spec.steps, spec.save]
        except Exception as error:  # noqa: BLE001 - a spec that does not load still shows
            cells = [f"(not a valid spec: {type(error).__name__}: {error})", "", "", "", "", ""]
        first = f'<td class="num">{_e(cells[0])}</td>'
        rows.append("<tr>" + first + "".join(f"<td>{_e(c)}</td>" for c in cells[1:]) + "</tr>")
    rows.append("</table>")
    return "\n".join(rows)


def _checks(r: Result) -> list:
    return [row for row in r.rows if row.is_check]


def _numbers(r: Result) -> dict[str, Any]:
    return {row.label: row.value for row in r.rows}


def _theory(r: Result) -> dict[str, Any]:
    return {row.label: row.theory for row in r.rows if row.theory is not None}


def _flatten(mapping: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in (mapping or {}).items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, f"{name} / "))
        else:
            out[name] = value
    return out


def _fmt(value: Any) -> str:
    """A value for a table cell: numbers to 4 digits, containers shortened, long text cut at 300."""
    if isinstance(value, str):
        return value if len(value) <= 300 else value[:297] + "..."
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        return f"{value:.4g}"
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, dict):
        items = list(value.items())
        shown = ", ".join(f"{k}: {_fmt(v)}" for k, v in items[:8])
        return "{" + shown + (", ..." if len(items) > 8 else "") + "}"
    if isinstance(value, (list, tuple)):
        shown = ", ".join(_fmt(v) for v in list(value)[:12])
        return f"[{shown}{', ...' if len(value) > 12 else ''}]"
    text = str(value)
    return text if len(text) <= 300 else text[:297] + "..."


def _relative(measured: Any, expected: Any) -> str:
    numeric = (int, float)
    if (
        isinstance(measured, numeric)
        and isinstance(expected, numeric)
        and not isinstance(measured, bool)
        and not isinstance(expected, bool)
        and expected != 0
        and math.isfinite(float(measured))
        and math.isfinite(float(expected))
    ):
        return f"{(measured - expected) / abs(expected):+.2%}"
    return ""


def _pass(ok: object) -> str:
    return "pass" if ok else "fail"


def _badge(verdict: str) -> str:
    color = VERDICT_COLORS.get(verdict, VERDICT_COLORS["error"])
    return f'<span class="verdict" style="background:{color}">{_e(verdict)}</span>'


def _claim_of(name: str) -> str:
    """The CLAIM of an experiment whose run failed (empty when even the import fails)."""
    try:
        from descent import experiments

        return str(experiments.get_experiment(name).CLAIM)
    except Exception:  # noqa: BLE001
        return ""


def _anchor(name: str) -> str:
    return "exp-" + "".join(c if c.isalnum() else "-" for c in name)


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _close(figure: Any) -> None:
    if figure is None:
        return
    try:
        import matplotlib.pyplot as plt

        plt.close(figure)
    except Exception:  # noqa: BLE001
        pass
