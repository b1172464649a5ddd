"""Figures of the ``open-vs-closed`` study.

:func:`figure_specs` turns the results document into plain figure descriptions
(``{name, kind, data}``, stored in results.json under ``figures``); :func:`write_figures` draws
them as PNG with matplotlib's Agg backend. Bars use a log axis: the chips differ by orders of
magnitude.
"""

from __future__ import annotations

from pathlib import Path


def figure_specs(doc: dict) -> list[dict]:
    """Bars of tokens/s per user, aggregate tokens/s and J/token per system, and $/Mtok against
    model lifetime with a line per system."""
    rows = doc["systems"]
    labels = [r["system"] for r in rows]

    def bars(name: str, field: str, ylabel: str) -> dict:
        return {"name": name, "kind": "bar",
                "data": {"labels": labels, "values": [r[field] for r in rows], "ylabel": ylabel, "log": True}}

    lifetimes = doc["lifetimes_months"]
    return [
        bars("tokens_per_s_per_user", "tokens_per_s_per_user", "tokens/s per user (batch 1)"),
        bars("aggregate_tokens_per_s", "tokens_per_s", "tokens/s, all users (largest batch)"),
        bars("j_per_token", "j_per_token_at_largest_batch", "J per token (largest batch)"),
        {"name": "usd_per_mtok_vs_model_lifetime", "kind": "lines",
         "data": {"x": lifetimes, "xlabel": "model lifetime (months)", "ylabel": "$ per million tokens",
                  "log": True,
                  "series": {r["system"]: [r["usd_per_mtok_by_lifetime"][f"{m:g}"] for m in lifetimes]
                             for r in rows}}},
    ]


def write_figures(doc: dict, folder: Path) -> list[Path]:
    """Draw every figure of ``doc["figures"]`` into ``folder`` as ``open-vs-closed.<name>.png``;
    returns the paths. Bars with no value (a chip without an energy spec) are left out and named."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for fig_spec in doc.get("figures") or figure_specs(doc):
        data = fig_spec["data"]
        fig, ax = plt.subplots(figsize=(7, 4))
        if fig_spec["kind"] == "bar":
            pairs = [(k, v) for k, v in zip(data["labels"], data["values"]) if v]
            ax.bar([k for k, _ in pairs], [v for _, v in pairs], color="#3b6fb6")
            missing = [k for k, v in zip(data["labels"], data["values"]) if not v]
            if missing:
                ax.set_title("no energy spec: " + ", ".join(missing), fontsize=8)
            ax.tick_params(axis="x", labelrotation=20)
        else:
            for label, ys in data["series"].items():
                ax.plot(data["x"], ys, marker="o", markersize=3, label=label)
            ax.set_xlabel(data["xlabel"])
            ax.legend(fontsize=8)
        if data.get("log"):
            ax.set_yscale("log")
            if fig_spec["kind"] == "bar" and pairs:  # bars from a labelled decade below the smallest
                import math

                values = [v for _, v in pairs]
                floor = 10.0 ** math.floor(math.log10(min(values)))
                ax.set_ylim(floor, 10.0 ** (math.log10(max(values)) + 0.2))
                ax.text(0.01, 0.98, f"log scale; bars from {floor:g}", transform=ax.transAxes, fontsize=7,
                        va="top", color="#555555")
        ax.set_ylabel(data["ylabel"])
        ax.grid(alpha=0.3, which="both")
        fig.suptitle(f"open vs closed: {doc['model']}")
        fig.tight_layout()
        out = folder / f"open-vs-closed.{fig_spec['name']}.png"
        fig.savefig(out, dpi=110)
        plt.close(fig)
        written.append(out)
    return written
