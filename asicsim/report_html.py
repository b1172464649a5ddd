"""One self-contained HTML page from a results folder: ``asicsim report RESULTS_DIR``.

The page holds the scenario that produced the results (as YAML), the comparison table (the same
grid as the terminal's, from :func:`asicsim.report_text.comparison_grid`), a plain table of any
other list of records a study wrote, and every PNG in the folder embedded as base64. It has no
scripts and no external URLs, so it opens offline from a file or an e-mail attachment. The same
folder always gives the same bytes.
"""

from __future__ import annotations

import base64
from html import escape
from pathlib import Path

import yaml

from asicsim.errors import InputError
from asicsim.safeio import load_json
from asicsim.report_text import comparison_grid

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto; max-width: 1180px;
       color: #222; line-height: 1.4; padding: 0 1rem; }
h1 { font-size: 1.5rem; margin-bottom: .2rem; } h2 { font-size: 1.15rem; margin-top: 2rem; }
.muted { color: #666; }
pre { background: #f6f6f6; padding: .8rem; overflow-x: auto; font-size: .85rem; border-radius: 4px; }
table { border-collapse: collapse; font-size: .88rem; margin: .5rem 0; }
th, td { padding: .25rem .7rem; border-bottom: 1px solid #e2e2e2; }
th { background: #f0f0f0; text-align: right; } th:first-child, td:first-child { text-align: left; }
td { text-align: right; font-variant-numeric: tabular-nums; }
figure { margin: 1.5rem 0; } figure img { max-width: 100%; height: auto; border: 1px solid #ddd; }
figcaption { font-size: .85rem; color: #555; }
"""


def write_report(folder: Path, out: Path | None = None) -> Path:
    """Write the report of ``folder`` to ``out`` (default ``folder/report.html``); returns its path.

    Raises InputError when the folder has no results.json, or one that is not a JSON object.
    """
    folder = Path(folder)
    out = Path(out) if out else folder / "report.html"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_report(folder), encoding="utf-8")
    return out


def render_report(folder: Path) -> str:
    """The report page of ``folder`` as an HTML string."""
    doc = _load(Path(folder))
    scenario = doc.get("scenario", {})
    name = scenario.get("name", Path(folder).name)
    parts = [f"<h1>{escape(str(name))}</h1>"]
    if scenario.get("description"):
        parts.append(f'<p class="muted">{escape(str(scenario["description"]))}</p>')
    parts.append("<h2>Scenario</h2>")
    parts.append(f"<pre>{escape(yaml.safe_dump(scenario, sort_keys=False, allow_unicode=True))}</pre>")
    parts += _tables(doc)
    figures = _figures(Path(folder))
    if figures:
        parts.append("<h2>Figures</h2>")
        parts += figures
    body = "\n".join(parts)
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>asicsim report: {escape(str(name))}</title>\n<style>{_CSS}</style>\n</head>\n"
            f"<body>\n{body}\n</body>\n</html>\n")


def _load(folder: Path) -> dict:
    path = folder / "results.json"
    if not path.is_file():
        raise InputError(str(folder), None, "has no results.json; run a scenario first "
                         "(asicsim run SCENARIO.yaml --out DIR) and give its output folder")
    doc = load_json(path)
    if not isinstance(doc, dict):
        raise InputError(str(path), None, "must hold a JSON object at the top level")
    return doc


def _tables(doc: dict) -> list[str]:
    """The comparison grid of ``results``, then every other list of flat records, as tables."""
    parts = []
    runs = doc.get("results")
    if _records(runs) and all("system" in r and "ttft_ms" in r for r in runs):
        title, header, body = comparison_grid(runs)
        parts += ["<h2>Results</h2>", f"<p>{escape(title)}</p>", _html_table(header, body)]
    for key, value in doc.items():
        if key in ("scenario", "results", "figures") or not _records(value):
            continue
        columns = list(dict.fromkeys(k for row in value for k, v in row.items() if not isinstance(v, (dict, list))))
        body = [[_cell(row.get(c)) for c in columns] for row in value]
        parts += [f"<h2>{escape(key)}</h2>", _html_table(columns, body)]
    return parts


def _records(value) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(r, dict) for r in value)


def _cell(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.4g}"
    return str(v)


def _html_table(header: list[str], body: list[list[str]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    rows = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>\n" for row in body)
    return f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{rows}</tbody>\n</table>"


_KINDS = ("roofline", "utilisation", "latency")
CAPTIONS = {
    "compare": "The runs side by side: time to first token, time per output token, tokens/s per user "
               "and, where the chip has an energy model, joules per generated token.",
    "roofline": "Each op pattern, summed over layers, in the prefill and in one decode step: achieved "
                "FLOP/s against FLOPs per byte streamed from HBM or SRAM, under the chip's compute and "
                "memory roofs. Points on the slope are bandwidth-bound; on the flat, compute-bound.",
    "utilisation": "Busy fraction of each kind of block, and of each kind of memory or link server, over "
                   "the whole run in 200 time bins; the shaded span is the prefill.",
    "latency": "Summed op spans by op pattern, coloured by what bound each op (compute, memory, link, "
               "fixed overhead, or waiting on other ops), and each phase's share of op time per bound.",
}


def _figures(folder: Path) -> list[str]:
    """Every PNG in ``folder`` as an embedded image with a caption: the comparison first, then
    each run's roofline, utilisation and latency figures, then any others by name."""
    def order(p: Path) -> tuple:
        stem, _, kind = p.stem.rpartition(".")
        return (p.stem != "compare", kind not in _KINDS, stem, _KINDS.index(kind) if kind in _KINDS else 0, p.name)

    out = []
    for p in sorted(folder.glob("*.png"), key=order):
        data = base64.b64encode(p.read_bytes()).decode("ascii")
        about = CAPTIONS.get(p.stem.rpartition(".")[2] or p.stem, "")
        out.append(f'<figure><img src="data:image/png;base64,{data}" alt="{escape(p.stem)}">'
                   f"<figcaption><b>{escape(p.name)}</b> {escape(about)}</figcaption></figure>")
    return out
