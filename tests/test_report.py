"""Figures and the HTML report, checked the way a reader sees them: in a headless browser.

A short comparison (Llama-3.1-8B, prompt 64, generate 8, on h100-sxm and taalas-hc1) is run
through the CLI once; its folder must hold a PNG and an SVG of every figure, and ``asicsim
report`` must turn it into one page that embeds every PNG, links nothing outside itself, and
renders in Debian's Chromium without a script error or a broken image.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
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


def invoke(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("report")
    (root / "short.yaml").write_text(SCENARIO)
    out = root / "results"
    result = invoke("run", str(root / "short.yaml"), "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "wrote 14 figures" in result.output
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


def _chromium(tmp: Path, *args: str) -> subprocess.CompletedProcess:
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp / 'profile'}", "--window-size=1200,3000"]
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


def _assert_not_blank(path: Path) -> None:
    """The screenshot shows plots: many pixels that are neither white nor one flat colour."""
    import matplotlib.image

    pixels = matplotlib.image.imread(path)[..., :3]
    assert pixels.shape[:2] == (3000, 1200)
    assert pixels.std() > 0.1
    coloured = (pixels.max(axis=2) - pixels.min(axis=2)) > 0.2  # saturated: bars, points, lines
    assert coloured.mean() > 0.01


def test_a_study_without_runs_still_gets_its_records_and_figures(tmp_path):
    """A study that writes records (not runs) gets them as a plain table, beside its own PNGs."""
    import matplotlib.image

    from asicsim.report_html import render_report

    doc = {"scenario": {"kind": "context-scaling", "name": "ctx"},
           "rows": [{"model": "llama-3.1-8b", "context": 1024, "tpot_ms": 5.93, "kv_bytes": 134217728.0}]}
    (tmp_path / "results.json").write_text(json.dumps(doc))
    matplotlib.image.imsave(tmp_path / "context-scaling.png", np.eye(8))
    html = render_report(tmp_path)
    assert "<h2>rows</h2>" in html and "<td>134,217,728</td>" in html and "<td>5.93</td>" in html
    assert html.count("<img ") == 1 and "context-scaling.png" in html
    assert render_report(tmp_path) == html

