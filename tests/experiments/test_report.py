"""The HTML report: everything goes into its folder, each result reads back from its JSON, the page
shows every verdict and a failure plainly; in Debian's Chromium the report of all nine experiments fits
1400 px (and a phone's width), every image loads, every card has a verdict, a figure and its key
numbers, every in-page link resolves and a click enlarges a figure."""

import base64
import json
import math
import re
import sys
import types
from html.parser import HTMLParser
from pathlib import Path

import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from descent import experiments
from descent.cli import app
from descent.experiments import Result, report
from descent.experiments.rows import agrees, exceeds, number
from descent.spec import RunSpec

torch.set_num_threads(1)
FAILURE = "boom: the fake experiment failed on purpose"
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "report"
QUICK_AND_CHEAP = ["plateau-momentum", "conditioning", "overdamped"]  # a few seconds each at quick size


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


def _interrupted(config, progress=None):
    raise KeyboardInterrupt


def _fine(config, progress=None):
    """A made-up result: a key claim check with an SE, a failed instrument check, a grouped number
    without theory, a label that is HTML, a config with a long list and a nested mapping."""
    return Result(
        "fake-fine",
        "the claim of fake-fine",
        "made up <b>not bold</b>",
        [
            agrees("tau", "escape time", 1.02, 1.0, se=0.01, about="claim", key=True, if_pass="It agreed."),
            exceeds("speed", "speed-up over GD", 3.0, 1.0, se=0.2, key=True, group="speed"),
            agrees("exact", "closed form <b>not bold</b>", 2.0, 1.0, rel=0.01, group="instrument"),
            number("b", "steps to settle", math.inf, group="speed"),
        ],
        config={"lrs": [0.05 + 0.0136 * i for i in range(12)], "nested": {"a": 1, "b": None}, "on": True},
    )


@pytest.fixture
def fakes(monkeypatch):
    for name, run in (("fake-broken", _broken), ("fake-fine", _fine), ("fake-stop", _interrupted)):
        module = _fake_module(name, run)
        monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.setattr(
        experiments,
        "EXPERIMENT_NAMES",
        (*experiments.EXPERIMENT_NAMES, "fake-broken", "fake-fine", "fake-stop"),
    )


class _Text(HTMLParser):
    """The page's visible text: without style, script and the folded tracebacks."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self.skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("style", "script", "pre"):
            self.skip += 1

    def handle_endtag(self, tag):
        if tag in ("style", "script", "pre"):
            self.skip -= 1

    def handle_data(self, data):
        if not self.skip:
            self.parts.append(data)


def visible_text(page: str) -> str:
    parser = _Text()
    parser.feed(page)
    return " ".join(parser.parts)


RAW_PYTHON = re.compile(
    r"\['|\{'|\{\"|[=:(\[,] ?(None|True|False)\b|\b(None|True|False)[,)\]]|array\(|tensor\(|"
    r"\[-?[\d.e+-]+(, -?[\d.e+-]+){3,}\]"  # a list of numbers as Python prints it
)


def check_plain_text(page: str) -> None:
    """No raw Python (reprs of lists, dicts, None, booleans, arrays) and nothing a reader cannot open."""
    text = visible_text(page)
    found = RAW_PYTHON.search(text)
    assert not found, f"raw Python on the page: ...{text[max(0, found.start() - 80) : found.end() + 80]}"
    assert "REFERENCE" not in text and "the issue" not in text.lower()


def check_links(page: str, folder: Path) -> None:
    """Only inline images, in-page anchors that exist, and files in the report's folder."""
    assert not re.search(r"https?://", page) and "<link" not in page
    ids = set(re.findall(r'\sid="([^"]+)"', page))
    for src in re.findall(r'\ssrc="([^"]*)"', page):
        assert src.startswith("data:image/png;base64,")
    for href in re.findall(r'\shref="([^"]*)"', page):
        if href.startswith("#"):
            assert href[1:] in ids, f"{href} points nowhere"
        else:
            assert "/" not in href and (folder / href).is_file(), f"{href} is not a file beside the page"


def card(page: str, name: str) -> str:
    found = re.search(rf'<section class="card" id="exp-{re.escape(name)}".*?</section>', page, re.S)
    assert found, f"no card for {name}"
    return found.group(0)


def badge(html: str) -> str:
    return re.search(r'<span class="badge"[^>]*>([^<]+)</span>', html).group(1)


def test_every_file_goes_into_the_report_folder_and_reads_back(fakes, tmp_path, monkeypatch):
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    calls = []
    names = [*QUICK_AND_CHEAP, "fake-broken"]
    out = tmp_path / "site" / "report"
    page_path = report.build_report(
        out, quick=True, names=names, progress=lambda done, total: calls.append((done, total))
    )
    assert page_path == out / "report.html"
    assert calls == [(k, len(names)) for k in range(len(names) + 1)]
    # everything in the folder, nothing anywhere else
    assert list(cwd.iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cwd", "site"]
    assert [p.name for p in (tmp_path / "site").iterdir()] == ["report"]
    files = sorted(p.name for p in out.iterdir())
    required = {"report.html", *(f"{n}.json" for n in names), *(f"{n}.png" for n in QUICK_AND_CHEAP)}
    assert required <= set(files)
    extra = set(files) - required
    assert all(re.fullmatch(rf"({'|'.join(QUICK_AND_CHEAP)})-\d+\.png", name) for name in extra), extra
    page = page_path.read_text(encoding="utf-8")
    # each result reads back from its JSON; its verdict is on its card and in the summary
    for name in QUICK_AND_CHEAP:
        data = json.loads((out / f"{name}.json").read_text())
        result = Result.from_dict(data)
        assert data["quick"] is True and result.name == name
        assert result.verdict == data["verdict"] and result.explanation == data["explanation"]
        assert badge(card(page, name)) == result.verdict
        assert re.search(rf'{re.escape(result.verdict)}</span><a href="#exp-{name}">', page)
        assert (out / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        for spec in result.specs:
            assert RunSpec.from_dict(spec).digest in card(page, name)
    # the failure: its error on its card, the traceback folded; its JSON says so
    broken = card(page, "fake-broken")
    assert badge(broken) == "error" and f"RuntimeError: {FAILURE}" in broken
    assert re.search(r"<details><summary>The traceback</summary>.*Traceback", broken, re.S)
    data = json.loads((out / "fake-broken.json").read_text())
    assert data["verdict"] == "error" and FAILURE in data["error"] and "Traceback" in data["traceback"]
    # each card's figure is the experiment's first figure, whole: the same bytes as NAME.png, a valid PNG
    for name in QUICK_AND_CHEAP:
        embedded = re.findall(r'src="data:image/png;base64,([^"]+)"', card(page, name))
        files = [out / f"{name}.png", *(out / f"{name}-{k}.png" for k in range(2, len(embedded) + 1))]
        assert embedded and [base64.b64decode(e) for e in embedded] == [f.read_bytes() for f in files]
        with Image.open(out / f"{name}.png") as image:
            image.load()  # raises on a truncated or corrupt file
    check_links(page, out)
    check_plain_text(page)


def test_a_card_shows_its_key_numbers_and_an_instrument_failure(fakes, tmp_path):
    out = report.build_report(tmp_path, quick=True, names=["fake-fine"])
    page = out.read_text(encoding="utf-8")
    result = _fine(None)
    fine = card(page, "fake-fine")
    assert badge(fine) == result.verdict == "held"
    # the failed instrument check is said plainly, up front
    assert "The instrument failed:" in fine and "closed form &lt;b&gt;not bold&lt;/b&gt;" in fine
    assert "instrument failed" in re.search(r'<nav class="summary".*?</nav>', page, re.S).group(0)
    # key numbers: measured with its SE, beside its theory, the deviation in SE, pass, power
    keys = fine[fine.index('<div class="keys">') : fine.index("<details>")]
    tau = result.row("tau")
    assert f"+{tau.deviation_se:.0f} SE" in keys
    assert f"detects a shift of {100 * tau.power:.2g} % of theory" in keys
    assert "&plusmn; 0.01" in keys and "vs theory <b>1</b>" in keys and "vs bound <b>1</b>" in keys
    assert keys.count('class="pass"') == 2
    # the full table, folded, grouped, claim and instrument checks told apart
    table = re.search(r"<details><summary>All numbers.*?</details>", fine, re.S).group(0)
    for group in ("speed", "instrument", "other numbers"):
        assert f'<tr class="group"><th colspan="7">{group}</th></tr>' in table
    assert table.count("claim check</span>") == 2 and table.count("instrument check</span>") == 1
    assert table.count('<tr class="failed">') == 1 and "\u221e" in table
    # config as key/value text, the long list shortened
    config = re.search(r"<details><summary>Configuration.*?</details>", fine, re.S).group(0)
    assert "12 values: 0.05 \u2026 0.1996" in config and "nested / b" in config
    assert "made up &lt;b&gt;not bold&lt;/b&gt;" in fine
    assert json.loads((tmp_path / "fake-fine.json").read_text())["rows"][3]["value"] == "inf"
    check_plain_text(page)
    check_links(page, tmp_path)


def test_an_interrupted_report_keeps_what_finished(fakes, tmp_path, monkeypatch):
    with pytest.raises(KeyboardInterrupt):
        report.build_report(tmp_path / "a", quick=True, names=["fake-fine", "fake-stop", "fake-broken"])
    page = (tmp_path / "a" / "report.html").read_text(encoding="utf-8")
    assert "Interrupted: 1 of 3 experiments finished" in page and 'id="exp-fake-fine"' in page
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["fake-fine.json", "report.html"]
    # the command: exit code 130, one line, the page written
    monkeypatch.setattr(experiments, "EXPERIMENT_NAMES", ("fake-fine", "fake-stop"))
    result = CliRunner().invoke(app, ["report", "--quick", "--out", str(tmp_path / "b")])
    assert result.exit_code == 130, result.output
    assert "Interrupted: 1 of 2" in (tmp_path / "b" / "report.html").read_text(encoding="utf-8")


def test_the_command_writes_into_out_report_by_default_and_refuses_a_file(fakes, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(experiments, "EXPERIMENT_NAMES", ("fake-fine", "fake-broken"))
    result = CliRunner().invoke(app, ["report", "--quick"])
    assert result.exit_code == 0, result.output
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
    assert sorted(p.name for p in (tmp_path / "out" / "report").iterdir()) == [
        "fake-broken.json",
        "fake-fine.json",
        "report.html",
    ]
    (tmp_path / "taken").write_text("")
    result = CliRunner().invoke(app, ["report", "--out", "taken"])
    assert result.exit_code == 2
    assert (
        result.output.strip() == "error: invalid --out='taken': expected a path in a folder (taken is a file)"
    )


# --- in the browser ----------------------------------------------------------------------------
def _wide(config, progress=None):
    rows = [
        number(f"r{b}", "y" * 500 + str(b), 0.123456789012345 * b, theory=7.77777777777, group="g" * 300)
        for b in range(40)
    ]
    return Result(
        "fake-wide",
        "the claim of fake-wide " + "z" * 700,
        "x" * 3000,
        [*rows, agrees("c", "c", 1, 1, rel=0, about="claim", key=True)],
        config={"long": ["w" * 400] * 3, "many": list(range(1000))},
    )


@pytest.mark.browser
def test_the_report_fits_the_window_however_long_its_numbers(tmp_path, monkeypatch, browser):
    """Long labels, groups, words and lists wrap inside the window (an earlier report was 45,000 px
    wide): no horizontal scroll at 1400 px nor at a phone's 390 px."""
    module = _fake_module("fake-wide", _wide)
    monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.setattr(experiments, "EXPERIMENT_NAMES", ("fake-wide",))
    path = report.build_report(tmp_path, quick=True)
    for width in (1400, 390):
        page = browser.new_page(viewport={"width": width, "height": 900})
        page.goto(path.as_uri())
        page.evaluate("() => document.querySelectorAll('details').forEach(d => d.open = true)")
        scroll = page.evaluate("() => document.documentElement.scrollWidth")
        page.close()
        assert scroll <= width, f"{scroll} px wide in a {width} px window"


@pytest.fixture(scope="module")
def full_report(tmp_path_factory) -> Path:
    """The report of all nine experiments at their quick size (about a minute on one core)."""
    return report.build_report(tmp_path_factory.mktemp("report"), quick=True)


OVERFLOWING = """() => {
  const width = document.documentElement.clientWidth, out = [];
  for (const el of document.querySelectorAll('main *')) {
    if (el.closest('.scroll') || el.closest('#zoom')) continue;
    const box = el.getBoundingClientRect();
    if (box.width && (box.right > width + 0.5 || box.left < -0.5)) {
      out.push(el.tagName + '.' + el.className + ' ' + Math.round(box.left) + '..' + Math.round(box.right));
    }
  }
  return out.slice(0, 10);
}"""

CARDS = """() => [...document.querySelectorAll('section.card')].map(card => ({
  id: card.id,
  badge: card.querySelector('.card-head .badge')?.textContent || '',
  figures: [...card.querySelectorAll('figure img')].filter(img => !img.closest('details')).length,
  keys: card.querySelectorAll('.key .measured').length,
  theory: card.querySelectorAll('.key .theory b').length,
}))"""

IMAGES = """() => [...document.querySelectorAll('main figure img')]
  .filter(img => !img.closest('details')).map(img => ({
  complete: img.complete, natural: img.naturalWidth, shown: img.getBoundingClientRect().width,
  room: img.closest('figure').getBoundingClientRect().width,
}))"""


@pytest.mark.browser
def test_the_report_of_all_nine_reads_in_a_browser(full_report, browser):
    folder = full_report.parent
    text = full_report.read_text(encoding="utf-8")
    check_plain_text(text)
    check_links(text, folder)
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.goto(full_report.as_uri())
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    # no horizontal scroll, nothing overflows, even with every fold open
    page.evaluate("() => document.querySelectorAll('details').forEach(d => d.open = true)")
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 1400
    assert page.evaluate(OVERFLOWING) == []
    page.evaluate("() => document.querySelectorAll('details').forEach(d => d.open = false)")
    # every card: a verdict, a figure, key numbers with their theory
    cards = page.evaluate(CARDS)
    assert [c["id"] for c in cards] == [f"exp-{name}" for name in experiments.EXPERIMENT_NAMES]
    for c in cards:
        assert c["badge"] in ("held", "partly held", "did not hold"), c
        assert c["figures"] == 1, c
        assert c["keys"] >= 1 and c["theory"] >= 1, c
    # every image loaded, shown at its own size or smaller (never stretched), and not shrunk needlessly
    images = page.evaluate(IMAGES)
    assert len(images) == len(cards)
    for image in images:
        assert image["complete"] and image["natural"] > 0, image
        assert image["shown"] <= image["natural"] + 0.5, image
        assert image["shown"] >= min(image["natural"], image["room"]) - 1, image
    # every in-page link resolves
    missing = page.evaluate(
        "() => [...document.querySelectorAll('a[href^=\"#\"]')]"
        ".map(a => a.getAttribute('href')).filter(h => !document.getElementById(h.slice(1)))"
    )
    assert missing == []
    # a click enlarges a figure; Escape closes it
    first = page.locator("figure a.zoom img").first
    shown = first.bounding_box()["width"]
    first.click()
    assert page.locator("#zoom").is_visible()
    assert page.locator("#zoom img").bounding_box()["width"] > shown
    page.keyboard.press("Escape")
    assert not page.locator("#zoom").is_visible()
    # the summary's links lead to the cards
    page.locator('nav.summary a[href="#exp-temperature"]').click()
    assert page.evaluate("() => location.hash") == "#exp-temperature"
    page.evaluate("() => window.scrollTo(0, 0)")
    height = page.evaluate("() => document.documentElement.scrollHeight")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "report-1400.png"), full_page=True)
    (ARTIFACTS / "report-1400-height.txt").write_text(f"{height}\n")
    print(f"report of all nine at quick size: {height} px tall at 1400 px")
    page.close()
    assert errors == []
    # a phone: no horizontal scroll either
    phone = browser.new_page(viewport={"width": 390, "height": 844})
    phone.goto(full_report.as_uri())
    assert phone.evaluate("() => document.documentElement.scrollWidth") <= 390
    assert phone.evaluate(OVERFLOWING) == []
    phone.screenshot(path=str(ARTIFACTS / "report-390.png"), full_page=True)
    phone.close()
