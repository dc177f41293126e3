"""The HTML report: built from the two quick experiments plus a fake one that fails on purpose; the
page must show every verdict, the failure plainly, figures as data URIs and no external URL."""

import json
import math
import re
import sys
import types

import pytest
import torch

from descent import experiments
from descent.experiments import Result, report
from descent.experiments.rows import agrees, number
from descent.spec import RunSpec

torch.set_num_threads(1)
FAILURE = "boom: the fake experiment failed on purpose"


def _fake_module(name: str, run) -> types.ModuleType:
    module = types.ModuleType(f"descent.experiments.{name.replace('-', '_')}")
    module.CLAIM = f"the claim of {name}"

    class Config:
        @classmethod
        def quick(cls):
            return cls()

    module.Config = Config
    module.run = run
    return module


def _broken(config, progress=None):
    raise RuntimeError(FAILURE)


def _fine(config, progress=None):
    return Result(
        "fake-fine",
        "the claim of fake-fine",
        "made up <b>not bold</b>",
        [
            number("a", "a", 1.0, theory=1.25),
            number("b", "nested / b", math.inf),
            agrees("c", "made up <b>not bold</b>", 1.0, 1.25, rel=0.01, about="claim"),
        ],
    )


@pytest.fixture
def fakes(monkeypatch):
    for name, run in (("fake-broken", _broken), ("fake-fine", _fine)):
        module = _fake_module(name, run)
        monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.setattr(
        experiments, "EXPERIMENT_NAMES", (*experiments.EXPERIMENT_NAMES, "fake-broken", "fake-fine")
    )


def test_report_from_two_quick_experiments_and_a_failure(fakes, tmp_path):
    calls = []
    out = tmp_path / "site" / "report.html"
    path = report.build_report(
        out,
        quick=True,
        names=["conditioning", "adaptive", "fake-broken"],
        progress=lambda done, total: calls.append((done, total)),
    )
    assert path == out
    assert calls == [(0, 3), (1, 3), (2, 3), (3, 3)]
    page = out.read_text(encoding="utf-8")
    # every verdict, coloured, in the summary and in the sections
    for verdict in ("held", "partly held", "error"):
        assert f'background:{report.VERDICT_COLORS[verdict]}">{verdict}</span>' in page
    assert page.count('<span class="verdict"') == 8  # summary, section heading (and verdict line) of each
    # the failure, plainly
    assert f"RuntimeError: {FAILURE}" in page
    assert "This experiment failed to run" in page and "Traceback" in page
    # figures inline, nothing external
    assert page.count('src="data:image/png;base64,') == 2
    assert not re.search(r"https?://", page)
    assert "<link" not in page and "<script" not in page
    assert re.findall(r'(?:src|href)="([^"]*)"', page)  # only data URIs and in-page anchors
    assert all(
        u.startswith(("data:image/png;base64,", "#")) for u in re.findall(r'(?:src|href)="([^"]*)"', page)
    )
    # numbers vs theory, checks, config, claim
    assert "Numbers vs theory" in page and "Checks" in page and "Configuration" in page
    assert "heavy ball, kappa=1000: 1 - rate within 2% of theory" in page
    assert "same budget of 800 steps" in page
    # the data beside the page
    data = out.parent / "report-data"
    cond = json.loads((data / "conditioning.json").read_text())
    assert cond["verdict"] == "held" and cond["quick"] is True and "rows" in cond
    assert json.loads((data / "adaptive.json").read_text())["verdict"] == "partly held"
    broken = json.loads((data / "fake-broken.json").read_text())
    assert broken["verdict"] == "error" and FAILURE in broken["error"] and "Traceback" in broken["traceback"]
    assert (data / "conditioning.png").stat().st_size > 10_000
    # the runs behind each result: every stored spec's digest is on the page
    assert "Runs" in page and "spec digest" in page
    for spec in cond["specs"]:
        assert RunSpec.from_dict(spec).digest in page


def test_report_defaults_to_the_registry_and_escapes(fakes, monkeypatch, tmp_path):
    monkeypatch.setattr(experiments, "EXPERIMENT_NAMES", ("fake-fine", "fake-broken", "no-such-module"))
    out = report.build_report(tmp_path / "r.html", quick=True)
    page = out.read_text(encoding="utf-8")
    assert "made up &lt;b&gt;not bold&lt;/b&gt;" in page
    assert "-20.00%" in page  # (1 - 1.25)/1.25 in the numbers-vs-theory table
    assert "nested / b" in page and ">inf<" in page
    assert "ModuleNotFoundError" in page and FAILURE in page
    fine = json.loads((tmp_path / "report-data" / "fake-fine.json").read_text())
    assert fine["rows"][1]["value"] == "inf"  # standard JSON, no Infinity


def _wide(config, progress=None):
    rows = [
        number(f"r{b}", "y" * 500 + str(b), 0.123456789012345 * b, theory=7.77777777777) for b in range(40)
    ]
    return Result(
        "fake-wide",
        "the claim of fake-wide",
        "x" * 3000,
        [*rows, agrees("c", "c", 1, 1, rel=0, about="claim")],
    )


@pytest.mark.browser
def test_the_report_fits_the_window_however_long_its_numbers(tmp_path, monkeypatch, browser):
    """A reader opens the page: long lists of dicts, long strings and long words wrap inside the window
    (an earlier report was 45,000 px wide). Measured in Debian's Chromium at two window widths."""
    module = _fake_module("fake-wide", _wide)
    monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.setattr(experiments, "EXPERIMENT_NAMES", ("fake-wide",))
    path = report.build_report(tmp_path / "report.html", quick=True)
    for width in (1280, 390):
        page = browser.new_page(viewport={"width": width, "height": 900})
        page.goto(path.as_uri())
        scroll = page.evaluate("() => document.documentElement.scrollWidth")
        page.close()
        assert scroll <= width + 2, f"{scroll} px wide in a {width} px window"
