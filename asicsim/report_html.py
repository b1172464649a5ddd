"""One self-contained HTML page from a results folder: ``asicsim report RESULTS_DIR``.

The page leads with the answer: the scenario's name, sentences computed from the results
(:mod:`asicsim.headlines`: ratios between systems, what bounds each phase, the winner per
metric) and the key chart; then the study's tables as the terminal shows them, with their notes
(:func:`asicsim.scenario.study_tables`); then every other figure; then the scenario as YAML. It is
drawn from a Jinja2 template shipped in the package (``asicsim/templates/report.html.j2``) with
HTML escaping on, has no scripts and no external URLs (it opens offline, from a file or an
e-mail attachment), embeds PNGs as base64, and the same folder always gives the same bytes.
"""

from __future__ import annotations

import base64
from pathlib import Path

import yaml

from asicsim.errors import InputError
from asicsim.headlines import KEY_FIGURE, headlines
from asicsim.safeio import load_json
from asicsim.tables import Table

_KINDS = ("roofline", "utilisation", "latency")
CAPTIONS = {
    "compare": "The runs side by side: time to first token, time per output token, tokens/s per user "
               "and, where the chip has an energy model, joules per generated token.",
    "roofline": "Each op pattern, summed over layers, in the prefill and in one decode step: achieved "
                "FLOP/s against FLOPs per byte streamed from HBM or SRAM, under the chip's compute and "
                "memory roofs (dotted: the roofs of several chips together, for ops split over them). Points on "
                "the slope are bandwidth-bound; on the flat, compute-bound.",
    "utilisation": "Busy % of each kind of block, and of each kind of memory or link server, as the mean "
                   "over each step (the prefill, then every decode step) on a 0-100 % axis; the legend gives "
                   "the whole run's and the decode phase's figures. The shaded span is the prefill.",
    "latency": "Summed op spans by op pattern, coloured by what bound each op (compute, memory, link, "
               "fixed overhead, or waiting on other ops), and each phase's share of op time per bound.",
    "usd_per_mtok_vs_model_lifetime": "Dollars per million generated tokens against how long the model stays "
                                      "in use: a hardwired chip's capex is spread over the model's life only.",
    "tokens_per_s_per_user": "Decode speed one user sees (batch 1), log scale.",
    "aggregate_tokens_per_s": "Tokens/s over all users at the largest batch that fits, log scale.",
    "j_per_token": "Decode energy per generated token at the largest batch, log scale.",
}


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
    import jinja2

    folder = Path(folder)
    doc = _load(folder)
    scenario = doc.get("scenario") if isinstance(doc.get("scenario"), dict) else {}
    kind = str(scenario.get("kind", "compare"))
    figures = _figures(folder)
    key = _key_figure(figures, kind)
    env = jinja2.Environment(loader=jinja2.PackageLoader("asicsim", "templates"),
                             autoescape=True, undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    return env.get_template("report.html.j2").render(
        name=str(scenario.get("name", folder.name)), description=str(scenario.get("description") or ""),
        headlines=headlines(doc), key_figure=key, tables=_tables(doc),
        figures=[f for f in figures if f is not key],
        scenario_yaml=yaml.safe_dump(scenario, sort_keys=False, allow_unicode=True))


def _load(folder: Path) -> dict:
    path = folder / "results.json"
    if not path.is_file():
        raise InputError(str(folder), None, "has no results.json; run a scenario first "
                         "(asicsim run SCENARIO.yaml --out DIR) and give its output folder")
    doc = load_json(path)
    if not isinstance(doc, dict):
        raise InputError(str(path), None, "must hold a JSON object at the top level")
    return doc


def _tables(doc: dict) -> list[Table]:
    """The study's own tables (as the terminal shows them); failing that (a kind without tables,
    or a document this version cannot read), every list of flat records in human units."""
    from asicsim.scenario import study_tables

    try:
        tables = study_tables(doc)
    except (KeyError, TypeError, ValueError, ZeroDivisionError, IndexError, AttributeError):
        tables = []
    return tables or _record_tables(doc)


def _record_tables(doc: dict) -> list[Table]:
    out = []
    for key, value in doc.items():
        if key in ("scenario", "figures") or not _records(value):
            continue
        columns = list(dict.fromkeys(k for row in value for k, v in row.items() if not isinstance(v, (dict, list))))
        body = [[_cell(c, row.get(c)) for c in columns] for row in value]
        out.append(Table(key.replace("_", " "), [_label(c) for c in columns], body, labels=1))
    return out


def _records(value) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(r, dict) for r in value)


def _label(column: str) -> str:
    """A record field as a column heading: ``kv_bytes`` → ``kv (GB)``, ``tpot_ms`` → ``tpot (ms)``."""
    if column.endswith("bytes"):
        return column.removesuffix("bytes").rstrip("_").replace("_", " ") + " (GB)"
    for suffix in ("_ms", "_gbps", "_w"):
        if column.endswith(suffix):
            return column.removesuffix(suffix).replace("_", " ") + f" ({suffix[1:].replace('gbps', 'GB/s')})"
    return column.replace("_", " ")


def _cell(column: str, v) -> str:
    from asicsim.headlines import num

    if v is None:
        return "-"
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return str(v)
    if column.endswith("bytes"):
        return f"{v / 1e9:,.3g}"
    if isinstance(v, int):
        return f"{v:,}"
    return num(v)


def _figures(folder: Path) -> list[dict]:
    """Every PNG in ``folder`` with a caption: the comparison first, then each run's roofline,
    utilisation and latency figures, then any others by name."""
    def order(p: Path) -> tuple:
        stem, _, kind = p.stem.rpartition(".")
        return (p.stem != "compare", kind not in _KINDS, stem, _KINDS.index(kind) if kind in _KINDS else 0, p.name)

    out = []
    for p in sorted(folder.glob("*.png"), key=order):
        out.append({"data": base64.b64encode(p.read_bytes()).decode("ascii"), "alt": p.stem, "name": p.name,
                    "caption": CAPTIONS.get(p.stem.rpartition(".")[2] or p.stem, "")})
    return out


def _key_figure(figures: list[dict], kind: str) -> dict | None:
    """The figure that answers the question: the kind's own (``KEY_FIGURE``), else the first."""
    want = KEY_FIGURE.get(kind)
    chosen = [f for f in figures if want and f["alt"] == want]
    return (chosen or figures or [None])[0]
