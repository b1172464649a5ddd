"""The command line: ``asicsim run``, ``report``, ``predict``, ``bench``, ``models``.

Bad input (an InputError) prints one paragraph to stderr and exits with status 2; it never
shows a traceback.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Self

import click

from asicsim.dtypes import DType
from asicsim.errors import InputError


class _Group(click.Group):
    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except InputError as e:
            click.echo(f"error: {e}", err=True)
            sys.exit(2)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="asicsim")
def main() -> None:
    """asicsim: simulate transformer inference on programmable and hardwired chips."""


@main.command()
@click.argument("scenario", type=click.Path(dir_okay=False))
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Output folder for results.json and figures (default: results/<scenario name>).")
@click.option("--trace", "trace_path", type=click.Path(dir_okay=False), default=None,
              help="Write a Chrome/Perfetto trace-event JSON of each run (one file per system).")
@click.option("--force", is_flag=True,
              help="Write into an output folder that is not empty (files of the same name are replaced, "
                   "others kept); without it such a folder is refused before anything runs.")
def run(scenario: str, out: str | None, trace_path: str | None, force: bool) -> None:
    """Run SCENARIO.yaml; print a table, write results.json and figures to the output folder."""
    from asicsim.plots import write_plots
    from asicsim.scenario import (
        load_scenario,
        run_scenario,
        study_figures,
        write_results,
    )

    spec = load_scenario(scenario)
    folder = Path(out) if out else Path("results") / spec.name
    if not force and _holds_files(folder):
        raise InputError(str(folder), None, "is not empty; choose another --out, or pass --force to write "
                         "into it (files of the same name are replaced, others kept)")
    with _Progress(len(getattr(spec, "systems", ())) or None) as note:
        output = run_scenario(scenario, note)
    click.echo(output.text)
    try:
        path = write_results(spec, output, folder)
    except OSError as e:
        raise InputError("--out", None, f"cannot write results into {folder}: {e.strerror or e}") from None
    click.echo(f"\nwrote {path}")
    figures = write_plots(output, folder) + study_figures(spec, output.doc, folder)
    if figures:
        plural = "s" if len(figures) != 1 else ""
        click.echo(f"wrote {len(figures)} figure{plural} to {folder} (see them all: asicsim report {folder})")
    if trace_path:
        _write_traces(output.results, Path(trace_path))


def _holds_files(folder: Path) -> bool:
    """Whether ``folder`` is a folder with anything in it."""
    try:
        return folder.is_dir() and any(folder.iterdir())
    except OSError:  # unreadable: writing will say why
        return False


class _Progress:
    """A tqdm bar over a study's simulations when stderr is a terminal; silent otherwise.

    Used as the ``progress(label)`` callback of a study, which calls it before each simulation:
    each call completes the previous one and names the next.
    """

    def __init__(self, total: int | None) -> None:
        from tqdm import tqdm

        tqdm.monitor_interval = 0  # no monitor thread: the figures are drawn in forked processes
        self.bar = tqdm(total=total, unit="run", file=sys.stderr, disable=not sys.stderr.isatty(),
                        leave=False, dynamic_ncols=True)
        self.started = False

    def __call__(self, label: str) -> None:
        if self.started:
            self.bar.update(1)
        self.started = True
        self.bar.set_description_str(f"simulating {label}")

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        if self.started and exc[0] is None:
            self.bar.update(1)
        self.bar.close()


@main.command()
@click.argument("results_dir", type=click.Path())
@click.option("--out", type=click.Path(dir_okay=False), default=None,
              help="The HTML file to write (default: RESULTS_DIR/report.html).")
def report(results_dir: str, out: str | None) -> None:
    """Write one self-contained HTML page of RESULTS_DIR: scenario, tables and every figure."""
    from asicsim.report_html import write_report

    try:
        path = write_report(Path(results_dir), Path(out) if out else None)
    except OSError as e:
        raise InputError("--out", None, f"cannot write the report: {e.strerror or e}") from None
    click.echo(f"wrote {path}")


def _write_traces(results, path: Path) -> None:
    from asicsim.perfetto import write_chrome_trace

    for r in results:
        # a system's name comes from its file: a slug of it, so it cannot name another folder
        slug = re.sub(r"[^A-Za-z0-9._-]+", "-", r.system.name).strip("-.") or "system"
        target = path if len(results) == 1 else path.with_name(f"{path.stem}.{slug}{path.suffix}")
        try:
            summary = write_chrome_trace(r.trace, target)
        except OSError as e:
            raise InputError("--trace", None, f"cannot write {target}: {e.strerror or e}") from None
        sampled = " (sampled by whole steps)" if summary["sampled"] else ""
        click.echo(f"wrote {target}: {summary['slices']:,} slices{sampled}", err=True)


@main.command()
@click.option("--model", required=True, help="A shipped model name (models/NAME.json) or a config.json path.")
@click.option("--system", required=True, help="A preset name or a chip/system YAML path.")
@click.option("--dtype", type=click.Choice([d.value for d in DType]), default="bf16", show_default=True,
              help="Number format of weights and compute.")
@click.option("--batch", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--prompt", type=click.IntRange(min=1), default=512, show_default=True, help="Prompt tokens.")
@click.option("--generate", type=click.IntRange(min=1), default=128, show_default=True, help="Tokens to generate.")
@click.option("--mapping", type=click.Choice(["temporal", "spatial"]), default=None,
              help="Override the chip's mapping: temporal (one set of arrays reused) or spatial (per-layer stages).")
@click.option("--chips", type=click.IntRange(min=1), default=None,
              help="Run on N chips of the system's kind, on its network (a chip preset: the chip's own).")
@click.option("--tp", type=click.IntRange(min=1), default=None,
              help="Tensor-parallel ranks per layer (default: the chips the other degrees leave).")
@click.option("--pp", type=click.IntRange(min=1), default=None, help="Pipeline stages (default 1).")
@click.option("--ep", type=click.IntRange(min=1), default=None,
              help="Expert-parallel ranks for MoE layers: 1 or equal to --tp (default 1).")
@click.option("--dp", type=click.IntRange(min=1), default=None, help="Data-parallel replicas (default 1).")
@click.option("--micro-batches", type=click.IntRange(min=1), default=None,
              help="Micro-batches through the pipeline stages (default: min(batch, pp)).")
@click.option("--fast/--exact", default=False, show_default=True,
              help="--fast simulates the prefill and sampled decode steps and interpolates the rest (within "
                   "0.5 %); --exact simulates every step.")
@click.option("--json", "as_json", is_flag=True,
              help="Print one JSON object (metrics, the plan, per-link utilisation) instead of a table.")
@click.option("--trace", "trace_path", type=click.Path(dir_okay=False), default=None,
              help="Write a Chrome/Perfetto trace-event JSON of the run.")
def predict(model: str, system: str, dtype: str, batch: int, prompt: int, generate: int, mapping: str | None,
            chips: int | None, tp: int | None, pp: int | None, ep: int | None, dp: int | None,
            micro_batches: int | None, fast: bool, as_json: bool, trace_path: str | None) -> None:
    """Predict latency and throughput of one model on one system."""
    from asicsim.api import predict as run_predict
    from asicsim.report_text import comparison_table

    result = run_predict(model, system, batch=batch, prompt=prompt, generate=generate, dtype=dtype,
                         mapping=mapping, chips=chips, tp=tp, pp=pp, ep=ep, dp=dp, micro_batches=micro_batches,
                         fast=fast)
    if as_json:
        summary = result.summary()
        summary.pop("block_utilisation")
        click.echo(json.dumps(summary, indent=2))
    else:
        click.echo(comparison_table([result]))
    if trace_path:
        _write_traces([result], Path(trace_path))


@main.command()
@click.option("--repeat", type=click.IntRange(min=1), default=3, show_default=True, help="Runs to take the median of.")
@click.option("--workload", "workloads", type=click.Choice(["quickstart", "scale-out", "generate-10k"]), multiple=True,
              help="Which reference workload to time (repeatable; default: both).")
def bench(repeat: int, workloads: tuple[str, ...]) -> None:
    """Time reference workloads: wall time, tasks simulated, engine tasks/s, peak memory."""
    from asicsim.bench import WORKLOADS, run_bench

    click.echo(run_bench(repeat, workloads or tuple(WORKLOADS)))


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of rows instead of a table.")
def validate(as_json: bool) -> None:
    """Compare predictions with public measurements of real chips (calibration rows apart)."""
    from dataclasses import asdict

    from asicsim.validation import run_checks, table

    checks = run_checks()
    if as_json:
        click.echo(json.dumps([asdict(c) | {"error": c.error} for c in checks], indent=2))
    else:
        click.echo(table(checks))


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of a table.")
def chips(as_json: bool) -> None:
    """List the chip and system presets: peak bf16 TFLOP/s, memory, and the network between chips."""
    from asicsim.hardware.catalog import catalog

    rows = catalog()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    header = (f"{'name':<16}{'chips':>6}  {'mapping':<9}{'bf16 TFLOP/s':>13}{'HBM GB':>8}{'HBM GB/s':>9}"
              f"{'SRAM MB':>9}  network (GB/s each way per link)")
    click.echo(header)
    click.echo("-" * len(header))
    for r in rows:
        net = r["network"]
        link = f"{net['topology']}, {net['link_gbps_each_way']:g}" if net else "-"
        if net and net["in_switch_reduction"]:
            link += ", in-switch reduction"
        tflops = r["bf16_tflops"] * r["chips"]
        click.echo(f"{r['name']:<16}{r['chips']:>6}  {r['mapping']:<9}"
                   f"{f'{tflops:,.0f}' if tflops >= 10 else f'{tflops:.2g}':>13}"
                   f"{r['hbm_gb'] * r['chips']:>8,.0f}{r['hbm_gbps'] * r['chips']:>9,.0f}"
                   f"{r['sram_mb'] * r['chips']:>9,.0f}  {link}")
    click.echo("\nrows give the whole system: a system's TFLOP/s, HBM and SRAM are its chips' together")


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of a table.")
def models(as_json: bool) -> None:
    """List the shipped models: parameters, active parameters, layer mix, KV and state bytes."""
    from asicsim.model.catalog import catalog

    rows = catalog()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    header = f"{'name':<22}{'params':>10}{'active':>10}{'KV B/token':>12}{'state B/seq':>13}  layer mix"
    click.echo(header)
    click.echo("-" * len(header))
    for r in rows:
        mix = ", ".join(f"{k} {v}" for k, v in r["layer_mix"].items())
        click.echo(f"{r['name']:<22}{r['params'] / 1e9:>9.2f}B{r['active_params'] / 1e9:>9.2f}B"
                   f"{r['kv_bytes_per_token']:>12,.0f}{r['state_bytes_per_sequence']:>13,.0f}  {mix}")


if __name__ == "__main__":
    main()
