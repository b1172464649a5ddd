"""Figures and the HTML report, checked the way a reader sees them: in a headless browser.

A short comparison (Llama-3.1-8B, prompt 64, generate 8, on h100-sxm and taalas-hc1) and a small
open-vs-closed study are run through the CLI once each; the comparison's folder must hold a PNG
and an SVG of every figure, and ``asicsim report`` must turn each folder into one page that
embeds every PNG, links nothing outside itself, renders in Debian's Chromium without a script
error or a broken image, shows the headline and the key chart in the first 900 px of a
1200-px-wide window, and has no table wider than the page (measured in the browser).
"""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
from markupsafe import escape  # what Jinja2 escapes with
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from asicsim.cli import main

CHROMIUM = Path("/usr/bin/chromium")
SCENARIO = """name: short
description: a short comparison for the report test
model: llama-3.1-8b
workload: {batch: 1, prompt: 64, generate: 8, dtype: bf16}
systems: [h100-sxm, taalas-hc1]
"""
# Records script errors, console errors and images that failed to decode into a hidden element
# that --dump-dom prints once the page has loaded.
PROBE = """<script>
window.__errors = [];
window.addEventListener("error", e => window.__errors.push("error: " + (e.message || e.type)), true);
const __consoleError = console.error;
console.error = (...a) => { window.__errors.push("console.error: " + a.join(" ")); __consoleError(...a); };
window.addEventListener("load", () => {
  const imgs = Array.from(document.images);
  for (const img of imgs) if (!img.complete || img.naturalWidth === 0) window.__errors.push("broken image " + img.alt);
  const out = document.createElement("pre");
  out.id = "probe"; out.hidden = true;
  out.textContent = JSON.stringify({errors: window.__errors, images: imgs.length,
                                    decoded: imgs.filter(i => i.naturalWidth > 0).length});
  document.body.appendChild(out);
});
</script>"""


OPEN_CLOSED = """kind: open-vs-closed
name: oc-small
description: a small open-vs-closed study for the report test
model: llama-3.1-8b
prompt: 64
generate: 2
dtype: bf16
systems: [h100-sxm, groq-lpu, taalas-hc1]
max_batch: 64
economics:
  electricity_usd_per_kwh: 0.08
  electricity_source: test input
  service_life_months: 48
  service_life_source: test input
  utilisation: 0.5
  utilisation_source: test input
  model_lifetime_months: 12
  model_lifetime_source: test input
  chips:
    h100-sxm: {chip_price_usd: 27500, source: test input}
    groq-lpu: {chip_price_usd: 20000, source: test input}
    taalas-hc1: {chip_price_usd: 10000, source: test input}
"""
# Measures, once the page and its images have loaded, where the headline and the key chart end
# and how wide each table and the page are, into a hidden element that --dump-dom prints.
LAYOUT = """<script>
window.addEventListener("load", () => {
  const box = sel => { const e = document.querySelector(sel); if (!e) return null;
                       const r = e.getBoundingClientRect(); return {top: r.top, bottom: r.bottom}; };
  const tables = Array.from(document.querySelectorAll("table")).map(t => ({
    right: t.getBoundingClientRect().right, scroll: t.scrollWidth, box: t.getBoundingClientRect().width}));
  const out = document.createElement("pre");
  out.id = "layout"; out.hidden = true;
  out.textContent = JSON.stringify({viewport: document.documentElement.clientWidth,
    page: document.documentElement.scrollWidth, headline: box("#headline"), key: box("#key-chart img"),
    results: box("h2"), tables});
  document.body.appendChild(out);
});
</script>"""


def invoke(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("report")
    (root / "short.yaml").write_text(SCENARIO)
    out = root / "results"
    result = invoke("run", str(root / "short.yaml"), "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "wrote 7 figures (PNG+SVG)" in result.stderr and "wrote" not in result.stdout
    result = invoke("report", str(out))
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def open_closed(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("report-oc")
    (root / "oc.yaml").write_text(OPEN_CLOSED)
    out = root / "results"
    result = invoke("run", str(root / "oc.yaml"), "--out", str(out))
    assert result.exit_code == 0, result.output
    result = invoke("report", str(out))
    assert result.exit_code == 0, result.output
    return out


def test_every_figure_is_written_as_png_and_svg(results):
    for system in ("h100-sxm", "taalas-hc1"):
        for kind in ("roofline", "utilisation", "latency"):
            for fmt in ("png", "svg"):
                assert (results / f"{system}.{kind}.{fmt}").stat().st_size > 5_000
    assert (results / "compare.png").exists() and (results / "compare.svg").exists()


def test_report_embeds_every_png_and_the_shared_table(results):
    html = (results / "report.html").read_text()
    pngs = sorted(results.glob("*.png"))
    assert html.count('<img src="data:image/png;base64,') == len(pngs) == 7
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html), "the page must not load anything remote"
    assert "<script" not in html
    doc = json.loads((results / "results.json").read_text())
    assert f"{doc['results'][0]['tpot_ms']:,.3f}" in html  # the terminal table's TPOT cell
    for label in ("TTFT (ms)", "decode bound", "tasks simulated", "systems:", "prompt: 64"):
        assert label in html


def test_report_leads_with_the_answer(results):
    """Headline sentences computed from results.json, then the key chart, then the tables,
    then the other figures, then the scenario as an appendix."""
    from asicsim.headlines import num, times

    html = (results / "report.html").read_text()
    runs = {r["system"]: r for r in json.loads((results / "results.json").read_text())["results"]}
    gpu, hc1 = runs["h100-sxm"], runs["taalas-hc1"]
    faster = gpu["tpot_ms"] / hc1["tpot_ms"]
    assert faster > 1.05
    first = (f"taalas-hc1 decodes {times(faster)} faster per user than h100-sxm "
             f"(TPOT {num(hc1['tpot_ms'])} ms against {num(gpu['tpot_ms'])} ms)")
    assert first in html
    later = hc1["ttft_ms"] / gpu["ttft_ms"]
    assert f"first token comes {times(later) + ' later' if later > 1 else times(1 / later) + ' sooner'}" in html
    bound = gpu["dominant_bound"]["decode"]
    assert f"Decode is {bound}-bound on h100-sxm ({gpu['bound_share']['decode'][bound]:.0%}" in html
    assert "lowest TTFT h100-sxm" in html if gpu["ttft_ms"] < hc1["ttft_ms"] else "lowest TTFT taalas-hc1" in html
    order = [html.index(mark) for mark in (first, 'id="key-chart"', "<h2>Results</h2>", "<h2>Figures</h2>",
                                           "<h2>Appendix: the scenario</h2>")]
    assert order == sorted(order)
    assert 'alt="compare"' in html[order[1]:order[2]]  # the comparison chart is the key chart


def test_open_closed_report_shows_the_terminal_tables_with_notes(open_closed):
    from asicsim.studies.open_closed_table import tables

    html = (open_closed / "report.html").read_text()
    doc = json.loads((open_closed / "results.json").read_text())
    main, by_life, *_ = tables(doc)  # then the silicon table where the scenario prices chips
    assert len(main.header) == 10 and main.header[-2:] == ["$/Mtok", "@12mo"]
    for row in main.rows + by_life.rows:
        assert "".join(f'<td class="{"l" if i < 1 else "r"}">{escape(c)}</td>' for i, c in enumerate(row)) in html
    for note in main.notes:
        assert f"<li>{escape(note)}</li>" in html
    assert "15,077,359,616" not in html and "usd_per_mtok_full_life" not in html  # no raw fields or bytes
    cheapest = min(doc["systems"], key=lambda r: r["usd_per_mtok"])
    assert f"after 12 months: {cheapest['system']} at $" in html
    assert 'alt="open-vs-closed.usd_per_mtok_vs_model_lifetime"' in html.split("<h2>Results</h2>")[0]


def test_report_escapes_hostile_text(tmp_path):
    """Names and descriptions from users' files reach the page as text, never as markup."""
    from asicsim.report_html import render_report

    hostile = '<script>alert(1)</script><img src=x onerror="alert(2)">'
    run = {"system": hostile, "model": "m", "batch": 1, "prompt": 1, "generate": 2, "dtype": "bf16",
           "ttft_ms": 1.0, "tpot_ms": 0.5, "tokens_per_s_per_user": 2000.0, "tokens_per_s": 2000.0,
           "dominant_bound": {"decode": "memory"}, "bound_share": {"decode": {"memory": 0.9}},
           "utilisation": {}, "bytes_per_decode_step": {}, "tasks": 10}
    doc = {"scenario": {"name": hostile, "description": hostile, "systems": [hostile]},
           "results": [run, run | {"system": "plain", "tpot_ms": 1.0}]}
    (tmp_path / "results.json").write_text(json.dumps(doc))
    html = render_report(tmp_path)
    assert "<script" not in html and "<img" not in html and 'onerror="' not in html
    assert escape(hostile) in html  # in the title, the headline, the table header and the appendix
    assert html.count(escape(hostile)) >= 4


def test_report_without_results_is_one_paragraph_and_status_2(tmp_path):
    result = CliRunner().invoke(main, ["report", str(tmp_path)])
    assert result.exit_code == 2
    assert "has no results.json" in result.output and "Traceback" not in result.output


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("tty", [True, False])
def test_progress_bar_only_on_a_terminal(monkeypatch, tty):
    from asicsim.cli import _Progress

    stream = _Terminal() if tty else io.StringIO()
    monkeypatch.setattr("sys.stderr", stream)
    with _Progress(2) as note:
        note("h100-sxm")
        note("taalas-hc1")
    text = stream.getvalue()
    if tty:
        assert "simulating h100-sxm" in text and "1/2" in text
    else:
        assert text == ""


def _chromium(tmp: Path, *args: str, height: int = 3000) -> subprocess.CompletedProcess:
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp / 'profile'}", f"--window-size=1200,{height}"]
    return subprocess.run([str(CHROMIUM), *flags, *args], capture_output=True, text=True, timeout=120,
                          check=False)


@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium (apt-get install chromium)")
def test_report_renders_in_headless_chromium(results, tmp_path):
    report = results / "report.html"
    probe = tmp_path / "probe.html"
    probe.write_text(report.read_text().replace("<head>", "<head>\n" + PROBE, 1))
    dom = _chromium(tmp_path, "--virtual-time-budget=10000", "--dump-dom", probe.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    found = re.search(r'<pre id="probe" hidden="">(.*?)</pre>', dom.stdout, re.DOTALL)
    assert found, dom.stdout[-2000:]
    state = json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    assert state == {"errors": [], "images": 7, "decoded": 7}
    assert dom.stdout.count("<img ") == 7

    shot = tmp_path / "shot.png"
    run = _chromium(tmp_path, "--enable-logging=stderr", "--v=0", f"--screenshot={shot}", report.as_uri())
    assert run.returncode == 0, run.stderr[-2000:]
    assert not [line for line in run.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    keep = Path(__file__).resolve().parents[1] / "out"
    if keep.is_dir():  # a place to look at it by eye; /out/ is ignored by git
        shutil.copy(shot, keep / "report-screenshot.png")
    _assert_not_blank(shot)


@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium (apt-get install chromium)")
@pytest.mark.parametrize("which", ["results", "open_closed"])
def test_headline_and_key_chart_above_the_fold_and_tables_fit(which, request, tmp_path):
    """In a 1200 x 900 window: the headline and the whole key chart end within the first 900 px,
    and neither the page nor any table is wider than the window."""
    folder = request.getfixturevalue(which)
    probe = tmp_path / "layout.html"
    probe.write_text((folder / "report.html").read_text().replace("<head>", "<head>\n" + LAYOUT, 1))
    dom = _chromium(tmp_path, "--virtual-time-budget=10000", "--dump-dom", probe.as_uri(), height=900)
    assert dom.returncode == 0, dom.stderr[-2000:]
    found = re.search(r'<pre id="layout" hidden="">(.*?)</pre>', dom.stdout, re.DOTALL)
    assert found, dom.stdout[-2000:]
    got = json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    assert got["viewport"] <= 1200 and got["tables"]
    assert got["headline"]["bottom"] <= got["key"]["top"] < got["key"]["bottom"] <= 900, got
    assert got["key"]["bottom"] - got["key"]["top"] > 250, got  # a chart, not a thumbnail
    assert got["page"] <= got["viewport"], got
    for t in got["tables"]:
        assert t["right"] <= got["viewport"] and t["scroll"] <= t["box"] + 1, got

    shot = tmp_path / "fold.png"
    run = _chromium(tmp_path, f"--screenshot={shot}", (folder / "report.html").as_uri(), height=900)
    assert run.returncode == 0, run.stderr[-2000:]
    keep = Path(__file__).resolve().parents[1] / "out"
    if keep.is_dir():
        shutil.copy(shot, keep / f"report-fold-{which}.png")
    import matplotlib.image

    pixels = matplotlib.image.imread(shot)[..., :3]
    assert pixels.shape[:2] == (900, 1200)
    coloured = (pixels.max(axis=2) - pixels.min(axis=2)) > 0.2  # the chart's bars and lines
    chart = coloured[int(got["key"]["top"]):int(got["key"]["bottom"])]
    assert chart.mean() > 0.005  # the screenshot shows the chart drawn there, not a blank box


def _assert_not_blank(path: Path) -> None:
    """The screenshot shows plots: many pixels that are neither white nor one flat colour."""
    import matplotlib.image

    pixels = matplotlib.image.imread(path)[..., :3]
    assert pixels.shape[:2] == (3000, 1200)
    assert pixels.std() > 0.1
    coloured = (pixels.max(axis=2) - pixels.min(axis=2)) > 0.2  # saturated: bars, points, lines
    assert coloured.mean() > 0.01


def test_a_study_without_runs_gets_its_own_tables_and_figures(tmp_path):
    """A study that writes records (not runs) gets its terminal tables, beside its own PNGs."""
    import matplotlib.image

    from asicsim.report_html import render_report

    rows = [{"model": "llama-3.1-8b", "context": c, "tpot_ms": t, "kv_bytes": 131072.0 * c, "state_bytes": 0.0}
            for c, t in ((1024, 5.93), (8192, 6.41))]
    doc = {"scenario": {"kind": "context-scaling", "name": "ctx", "batch": 1}, "system": "h100-sxm", "rows": rows}
    (tmp_path / "results.json").write_text(json.dumps(doc))
    matplotlib.image.imsave(tmp_path / "context-scaling.png", np.eye(8))
    html = render_report(tmp_path)
    assert "decode TPOT (ms) on h100-sxm, batch 1, by context length" in html
    assert '<td class="r">5.930</td>' in html and '<td class="r">1,073.7</td>' in html  # 8192 x 131072 B in MB
    assert "grows 1.1× from context 1,024 to 8,192 (5.93 to 6.41 ms)" in html
    assert html.count("<img ") == 1 and "context-scaling.png" in html
    assert render_report(tmp_path) == html


def test_an_unknown_document_falls_back_to_records_in_human_units(tmp_path):
    from asicsim.report_html import render_report

    doc = {"scenario": {"kind": "someday", "name": "x"},
           "rows": [{"model": "m", "kv_bytes": 15_077_359_616, "tpot_ms": 5.6123}]}
    (tmp_path / "results.json").write_text(json.dumps(doc))
    html = render_report(tmp_path)
    assert "kv (GB)" in html and '<td class="r">15.1</td>' in html and '<td class="r">5.61</td>' in html
    assert "15,077,359,616" not in html



def test_results_csv_is_tidy_rows_pandas_reads(results, open_closed):
    """results.csv beside results.json: one row per run, a column per scalar, values in full."""
    import pandas as pd

    for folder, key in ((results, "results"), (open_closed, "systems")):
        records = json.loads((folder / "results.json").read_text())[key]
        table = pd.read_csv(folder / "results.csv")
        assert list(table["system"]) == [r["system"] for r in records]
        assert list(table["tpot_ms"]) == [r["tpot_ms"] for r in records]  # repr: no digit lost
    table = pd.read_csv(results / "results.csv")
    runs = json.loads((results / "results.json").read_text())["results"]
    assert list(table["utilisation.decode.matmul"]) == [r["utilisation"]["decode"]["matmul"] for r in runs]
    assert "ops" not in table.columns  # per-op detail stays in results.json
    table = pd.read_csv(open_closed / "results.csv")
    assert table["zoo_runs"].iloc[-1] == ";".join(json.loads((open_closed / "results.json").read_text())
                                                  ["systems"][-1]["zoo_runs"])


def test_a_second_record_list_gets_its_own_csv(tmp_path):
    from asicsim.tidy import write_csv

    doc = {"model": "m", "rows": [{"setup": "a", "fits": True, "layout": {"tp": 2}}],
           "link_sweep": [{"bandwidth_gbps": 50.0, "tpot_ms": None}]}
    paths = write_csv(doc, tmp_path)
    assert [p.name for p in paths] == ["results.csv", "link_sweep.csv"]
    assert (tmp_path / "results.csv").read_text() == "setup,fits,layout.tp\na,True,2\n"
    assert (tmp_path / "link_sweep.csv").read_text() == "bandwidth_gbps,tpot_ms\n50.0,\n"


def test_headlines_of_the_study_kinds_come_from_their_numbers():
    """Scale-out, context-scaling and sweep documents get sentences computed from their rows."""
    from asicsim.headlines import headlines

    rows = [{"setup": "a", "fits": True, "chips": 2, "tpot_ms": 10.0, "ttft_ms": 50.0, "tokens_per_s_per_chip": 50.0},
            {"setup": "b", "fits": True, "chips": 8, "tpot_ms": 4.0, "ttft_ms": 20.0, "tokens_per_s_per_chip": 31.0},
            {"setup": "c", "fits": False, "chips": 1, "reason": "too big"}]
    sweep = [{"fits": True, "bandwidth_gbps": 50.0, "tpot_ms": 4.04, "ttft_ms": 60.0},
             {"fits": True, "bandwidth_gbps": 900.0, "tpot_ms": 4.0, "ttft_ms": 20.0}]
    said = headlines({"scenario": {"kind": "scale-out"}, "model": "m", "rows": rows, "link_sweep": sweep})
    assert said == ["Fastest decode: b on 8 chips, TPOT 4.00 ms, 2.5× faster than a.",
                    "Most tokens/s per chip: a (50.0).", "Refused (does not fit): c.",
                    "Link sweep: at 50 GB/s, TTFT is 3.0× the best and TPOT within 1 % of the best "
                    "(best at 900 GB/s)."]
    ctx = [{"model": m, "context": c, "tpot_ms": t, "kv_bytes": kv, "state_bytes": 0.0}
           for m, c, t, kv in (("x", 1024, 5.0, 1e8), ("x", 8192, 6.0, 8e8), ("y", 1024, 2.0, 0.0), ("y", 8192, 2.02, 0.0))]
    said = headlines({"scenario": {"kind": "context-scaling"}, "system": "s", "rows": ctx})
    assert said[:2] == ["On s, decode TPOT of x grows 1.2× from context 1,024 to 8,192 (5.00 to 6.00 ms).",
                        "Least growth: y, within 1 % (2.00 to 2.02 ms)."]
    pts = [{"point": {"workload.batch": b}, "ok": True, "tpot_ms": t} for b, t in ((1, 5.0), (8, 6.5))]
    said = headlines({"scenario": {"kind": "sweep"}, "model": "m", "system": "s", "rows": pts})
    assert said == ["2 of 2 points ran (m on s).",
                    "Fastest decode: TPOT 5.00 ms at batch=1; slowest 6.50 ms at batch=8 (1.3×)."]
    assert headlines({"scenario": {"kind": "scale-out"}, "rows": "not rows"}) == []  # unreadable: no claim


def _paths(obj, prefix=()):
    """Every key path of a JSON document (the first three items of each list)."""
    if prefix:
        yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj[:3]):
            yield from _paths(v, prefix + (i,))


@pytest.mark.parametrize("which", ["results", "open_closed"])
def test_report_of_an_edited_results_json_is_a_page_or_one_clear_error(which, request, tmp_path):
    """A results.json edited by hand (a field deleted, or set to another type, NaN, ±inf, a huge
    number or markup): `asicsim report` writes a page or exits 2 with a paragraph — no traceback."""
    import copy
    import random

    src = request.getfixturevalue(which)
    folder = tmp_path / "edited"
    shutil.copytree(src, folder, ignore=shutil.ignore_patterns("*.svg", "report.html"))
    doc = json.loads((src / "results.json").read_text())
    paths = list(_paths(doc))
    values = [None, "x", -1, 0, 1e308, float("nan"), float("inf"), [], {}, True, "<b>", [1, "a"], {"a": 1}, 10**30]
    rng = random.Random(13)
    for _ in range(40):
        edited = copy.deepcopy(doc)
        *parents, last = rng.choice(paths)
        target = edited
        for k in parents:
            target = target[k]
        if rng.random() < 0.3 and isinstance(target, dict):
            del target[last]
        else:
            target[last] = rng.choice(values)
        (folder / "results.json").write_text(json.dumps(edited))
        result = CliRunner().invoke(main, ["report", str(folder)])  # exceptions caught: a traceback fails below
        assert result.exit_code in (0, 2), (parents, last, result.output, result.exception)
        if result.exit_code == 2:
            assert "Traceback" not in result.output and len(result.output) < 1500
    # a document that is not an object at all
    (folder / "results.json").write_text("[1, 2]")
    result = CliRunner().invoke(main, ["report", str(folder)])
    assert result.exit_code == 2 and "JSON object" in result.output


def test_a_long_scenario_is_not_estimated_from_points_refused_at_once(monkeypatch, capsys):
    """A sweep's first points may be refused in no time: the estimate waits until the runs so far
    have taken a fifth of the note threshold (it said 'the first took 0.0 s, so about 7 s in all'
    of a sweep that took minutes)."""
    import time

    from asicsim import cli
    from asicsim.compile import NOTE_S

    now = [100.0]
    monkeypatch.setattr(time, "perf_counter", lambda: now[0])  # a clock the test moves (tqdm reads it too)
    notes = []
    monkeypatch.setattr(cli._OUT, "status", notes.append)
    with cli._Progress(1000) as note:
        note("refused-1")
        now[0] = 100.006
        note("refused-2")  # 0.006 s for one: 1000 would take 6 s, but it is too soon to tell
        now[0] = 100.012
        note("simulated")  # 0.012 s for two: still too soon
        assert notes == []
        now[0] = 100 + NOTE_S / 5 + 1
        note("next")  # more than a fifth of NOTE_S for three: now estimated
    assert len(notes) == 1 and "this scenario runs 1,000 simulations; the first 3 took" in notes[0], notes
