"""The command line: ``asicsim run``, ``report``, ``predict``, ``serve``, ``bench``, ``models``.

Bad input (an InputError) prints one paragraph to stderr and exits with status 2; it never
shows a traceback.
"""

from __future__ import annotations

import json
import re
import sys
import warnings
from pathlib import Path
from typing import Self

import click

from asicsim.dtypes import KV_DTYPES, DType
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
@click.option("-q", "--quiet", is_flag=True, help="Print results only: no progress, no 'wrote ...' lines.")
@click.option("-v", "--verbose", is_flag=True, help="Also time each stage on stderr, on a terminal or not.")
def main(quiet: bool, verbose: bool) -> None:
    """asicsim: simulate transformer inference on programmable and hardwired chips.

    Results go to stdout; progress (on a terminal only) and 'wrote ...' lines go to stderr."""
    _OUT.quiet, _OUT.verbose = quiet, verbose and not quiet
    warnings.showwarning = _show_warning
    warnings.filterwarnings("always", message="this run simulates about")  # every long run says so


_SHOW = warnings.showwarning


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """A long run's estimate (compile.LongRun) as a note on stderr; other warnings as Python shows them."""
    if category.__name__ == "LongRun":
        _OUT.status(f"note: {message}")
    else:
        _SHOW(message, category, filename, lineno, file, line)


# --- output conventions: results on stdout; status and progress on stderr -------------------------

class _Out:
    """How chatty the commands are: ``--quiet`` keeps only results; progress shows on a terminal;
    ``--verbose`` times every stage, on a terminal or not."""

    quiet = False
    verbose = False

    def status(self, message: str) -> None:
        """A line about what was done ('wrote ...'), on stderr unless --quiet."""
        if not self.quiet:
            click.echo(message, err=True)

    def live(self) -> bool:
        """Whether to draw progress: stderr is a terminal and not --quiet."""
        return not self.quiet and sys.stderr.isatty()


_OUT = _Out()


def _chatty(command):
    """-q/--quiet and -v/--verbose after the command name too (``asicsim run -q FILE``)."""
    def setter(name: str):
        def set_flag(ctx, param, value: bool) -> None:
            if value:
                setattr(_OUT, name, True)
                _OUT.verbose = _OUT.verbose and not _OUT.quiet
        return set_flag

    command = click.option("-v", "--verbose", is_flag=True, expose_value=False, callback=setter("verbose"),
                           help="Also time each stage on stderr.")(command)
    return click.option("-q", "--quiet", is_flag=True, expose_value=False, callback=setter("quiet"),
                        help="Print results only: no progress, no 'wrote ...' lines.")(command)


class _Stage:
    """A stage that may take more than a second (drawing figures, writing traces, validating):
    its label on stderr while it runs (on a terminal), its time after it with --verbose."""

    def __init__(self, label: str) -> None:
        self.label = label

    def __enter__(self) -> Self:
        import time

        self.t0 = time.perf_counter()
        if _OUT.live():
            sys.stderr.write(f"{self.label} ...\r")
            sys.stderr.flush()
        return self

    def __exit__(self, *exc) -> None:
        import time

        if _OUT.live():
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()
        if _OUT.verbose and exc[0] is None:
            click.echo(f"{self.label}: {time.perf_counter() - self.t0:.1f} s", err=True)


def _figure_count(paths: list[Path]) -> str:
    """'7 figures (PNG+SVG)': one figure per name, whatever formats it was saved in."""
    formats: dict[Path, list[str]] = {}
    for p in paths:
        formats.setdefault(p.with_suffix(""), []).append(p.suffix.lstrip(".").upper())
    kinds: dict[str, int] = {}
    for fmts in formats.values():
        key = "+".join(sorted(set(fmts), key=lambda f: (f != "PNG", f)))
        kinds[key] = kinds.get(key, 0) + 1
    n = len(formats)
    what = ", ".join(f"{k}" if len(kinds) == 1 else f"{c} {k}" for k, c in kinds.items())
    return f"{n} figure{'s' if n != 1 else ''} ({what})"


def _overrides(pairs: tuple[str, ...]) -> dict[str, object]:
    """``--set PATH=VALUE`` pairs as a dict; the value is read as YAML (8, 1e3, true, [a, b])."""
    import yaml

    out = {}
    for pair in pairs:
        key, eq, text = pair.partition("=")
        if not eq or not key.strip():
            raise InputError("--set", None, f"takes FIELD.PATH=VALUE (e.g. workload.batch=8), got {pair[:60]!r}")
        try:
            out[key.strip()] = yaml.safe_load(text)
        except yaml.YAMLError:
            raise InputError("--set", key.strip(), f"cannot read the value {text[:60]!r}") from None
    return out


@main.command()
@click.argument("scenario", type=click.Path(dir_okay=False))
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Output folder for results.json and figures (default: results/<scenario name>).")
@click.option("--trace", "trace_path", type=click.Path(dir_okay=False), default=None,
              help="Write a Chrome/Perfetto trace-event JSON of each run (one file per system; "
                   "gzip-compressed if it ends in .gz).")
@click.option("--trace-steps", default=None, metavar="all|first:N|every:K",
              help="Steps the trace keeps: all, the prefill and the first N decode steps, or every K-th "
                   "decode step (default first:8: a few MB that opens quickly).")
@click.option("--set", "sets", multiple=True, metavar="FIELD.PATH=VALUE",
              help="Override a scenario field, e.g. --set workload.batch=8 --set systems=[h100-sxm] "
                   "(repeatable; the value is read as YAML).")
@click.option("--json", "as_json", is_flag=True,
              help="Print results.json's document (the scenario and the study's results) instead of the table.")
@click.option("--force", is_flag=True,
              help="Write into an output folder that is not empty (files of the same name are replaced, "
                   "others kept); without it such a folder is refused before anything runs.")
@_chatty
def run(scenario: str, out: str | None, trace_path: str | None, trace_steps: str | None,
        sets: tuple[str, ...], as_json: bool, force: bool) -> None:
    """Run SCENARIO.yaml; print a table, write results.json, results.csv and figures to the
    output folder."""
    from asicsim.plots import write_plots
    from asicsim.scenario import (
        load_scenario,
        run_scenario,
        study_figures,
        write_results,
    )

    steps = _trace_steps(trace_path, trace_steps)
    overrides = _overrides(sets)
    spec = load_scenario(scenario, overrides)
    folder = Path(out) if out else Path("results") / spec.name
    if not force and _holds_files(folder):
        raise InputError(str(folder), None, "is not empty; choose another --out, or pass --force to write "
                         "into it (files of the same name are replaced, others kept)")
    with _Progress(len(getattr(spec, "systems", ())) or None) as note:
        output = run_scenario(scenario, note, overrides)
    try:
        path = write_results(spec, output, folder)
    except OSError as e:
        raise InputError("--out", None, f"cannot write results into {folder}: {e.strerror or e}") from None
    if as_json:
        click.echo(path.read_text())
    else:
        click.echo(output.text)
    _OUT.status(f"\nwrote {path} and {path.with_suffix('.csv').name}")
    with _Stage("drawing figures"):
        figures = write_plots(output, folder) + study_figures(spec, output.doc, folder)
    if figures:
        _OUT.status(f"wrote {_figure_count(figures)} to {folder} (see them all: asicsim report {folder})")
    if steps:
        _write_traces(output.results, trace_path, steps)


def _holds_files(folder: Path) -> bool:
    """Whether ``folder`` is a folder with anything in it."""
    try:
        return folder.is_dir() and any(folder.iterdir())
    except OSError:  # unreadable: writing will say why
        return False


class _Progress:
    """A tqdm bar over a study's simulations when stderr is a terminal; silent otherwise.

    Used as the ``progress(label)`` callback of a study, which calls it before each simulation:
    each call completes the previous one and names the next. A scenario of many short runs is
    announced like one long run (compile.NOTE_S): once the first simulations have taken a fifth of
    that (a sweep's first points may be refused in no time), with what all of them should take; where
    the count is not known, once they have taken that long.
    """

    def __init__(self, total: int | None) -> None:
        from tqdm import tqdm

        tqdm.monitor_interval = 0  # no monitor thread: the figures are drawn in forked processes
        self.bar = tqdm(total=total, unit="run", file=sys.stderr, disable=not _OUT.live(),
                        leave=False, dynamic_ncols=True)
        self.total, self.done, self.t0, self.noted = total, 0, 0.0, False

    def __call__(self, label: str) -> None:
        import time

        if self.t0:
            self.bar.update(1)
            self.done += 1
            self._note(time.perf_counter() - self.t0)
        else:
            self.t0 = time.perf_counter()
        self.bar.set_description_str(f"simulating {label}")

    def _note(self, took: float) -> None:
        from asicsim.compile import NOTE_S

        if self.noted:
            return
        if took < NOTE_S / 5:  # too soon to tell: a sweep's first points may be refused at once
            return
        if self.total and self.total > self.done and took / self.done * self.total > NOTE_S:
            self.noted = True
            _OUT.status(f"note: this scenario runs {self.total:,} simulations; the first {'' if self.done == 1 else f'{self.done:,} '}took "
                        f"{took:.1f} s, so about {_seconds(took / self.done * self.total)} in all")
        elif not self.total and took > NOTE_S:
            self.noted = True
            _OUT.status(f"note: this scenario has run {self.done:,} simulations in {took:.0f} s so far; more follow")

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        if self.t0 and exc[0] is None:
            self.bar.update(1)
        self.bar.close()


def _seconds(s: float) -> str:
    return f"{s / 60:.0f} minutes" if s >= 120 else f"{s:.0f} s"


@main.command()
@click.argument("results_dir", type=click.Path())
@click.option("--out", type=click.Path(dir_okay=False), default=None,
              help="The HTML file to write (default: RESULTS_DIR/report.html).")
@_chatty
def report(results_dir: str, out: str | None) -> None:
    """Write one self-contained HTML page of RESULTS_DIR: scenario, tables and every figure."""
    from asicsim.report_html import write_report

    try:
        with _Stage("writing the report"):
            path = write_report(Path(results_dir), Path(out) if out else None)
    except OSError as e:
        raise InputError("--out", None, f"cannot write the report: {e.strerror or e}") from None
    _OUT.status(f"wrote {path}")


def _trace_steps(path: str | None, steps: str | None):
    """The checked ``--trace-steps`` (default first:8) when a trace is asked for, else None;
    checked before anything runs."""
    from asicsim.perfetto import DEFAULT_STEPS, parse_steps

    if steps and not path:
        raise InputError("--trace-steps", None, "chooses the steps of a trace; give --trace FILE.json (or .json.gz) too")
    return parse_steps(steps or DEFAULT_STEPS) if path else None


def _write_traces(results, path: str, choice) -> None:
    """One trace per run (``NAME.SYSTEM.json`` when there are several) of the ``choice`` of steps
    (all lifts the slice cap); a name ending in .gz is written compressed."""
    from asicsim.perfetto import write_chrome_trace

    path = Path(path)
    for r in results:
        # a system's name comes from its file: a slug of it, so it cannot name another folder
        slug = re.sub(r"[^A-Za-z0-9._-]+", "-", r.system.name).strip("-.") or "system"
        name = path.name.removesuffix(".gz")
        stem, dot, ext = name.rpartition(".") if "." in name else (name, "", "")
        gz = ".gz" if path.name.endswith(".gz") else ""
        target = path if len(results) == 1 else path.with_name(f"{stem}.{slug}{dot}{ext}{gz}")
        try:
            with _Stage(f"writing {target}"):
                summary = write_chrome_trace(r.trace, target, max_slices=None if choice.mode == "all" else 200_000,
                                             steps=choice)
        except OSError as e:
            raise InputError("--trace", None, f"cannot write {target}: {e.strerror or e}") from None
        _OUT.status(f"wrote {target} ({summary['bytes'] / 1e6:,.1f} MB): {summary['slices']:,} of "
                    f"{summary['slices'] + summary['dropped']:,} tasks as slices; {summary['kept']}")


@main.command()
@click.argument("scenario", type=click.Path(dir_okay=False))
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Output folder (default: results/<scenario name>); finished points are kept in "
                   "OUT/results.sqlite unless the file names a store, so a rerun resumes.")
@click.option("--workers", type=click.IntRange(min=1, max=256), default=None,
              help="Local processes running points at once (default: the file's, else 1).")
@click.option("--scheduler", default=None, metavar="tcp://HOST:PORT",
              help="Run the points on an existing Dask distributed cluster instead.")
@click.option("--set", "sets", multiple=True, metavar="FIELD.PATH=VALUE",
              help="Override a field of the file, e.g. --set workload.prompt=1024 (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print results.json's document instead of the table.")
@_chatty
def sweep(scenario: str, out: str | None, workers: int | None, scheduler: str | None, sets: tuple[str, ...],
          as_json: bool) -> None:
    """Run a sweep file (kind: sweep) over its points, locally or on a Dask cluster; resumable."""
    from asicsim.scenario import load_scenario, run_scenario, study_figures, write_results

    overrides = _overrides(sets)
    spec = load_scenario(scenario, overrides)
    if spec.kind != "sweep":
        raise InputError(scenario, "kind", f"asicsim sweep runs files of kind sweep, not {spec.kind}; "
                         "use asicsim run")
    folder = Path(out) if out else Path("results") / spec.name
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InputError("--out", None, f"cannot create {folder}: {e.strerror or e}") from None
    if spec.store is None:
        overrides["store"] = str((folder / "results.sqlite").resolve())
    if workers is not None:
        overrides["workers"] = workers
    if scheduler is not None:
        overrides["scheduler"] = scheduler
    from asicsim.studies.sweep import point_count

    with _Progress(point_count(load_scenario(scenario, overrides), Path(scenario))) as note:
        output = run_scenario(scenario, note, overrides)
    try:
        path = write_results(load_scenario(scenario, overrides), output, folder)
    except OSError as e:
        raise InputError("--out", None, f"cannot write results into {folder}: {e.strerror or e}") from None
    click.echo(path.read_text() if as_json else output.text)
    _OUT.status(f"\nwrote {path} and {path.with_suffix('.csv').name}")
    figures = study_figures(spec, output.doc, folder)
    if figures:
        _OUT.status(f"wrote {_figure_count(figures)} to {folder}")


@main.command()
@click.argument("store", type=click.Path(dir_okay=True))
@click.option("--where", "wheres", multiple=True, metavar="FIELD=VALUE",
              help="Keep rows whose FIELD (a point's field path or a result column) equals VALUE (repeatable).")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False), default=None, help="Write the rows as CSV.")
@click.option("--parquet", "parquet_path", type=click.Path(dir_okay=False), default=None,
              help="Write the rows as Parquet.")
@click.option("--json", "as_json", is_flag=True, help="Print the rows as a JSON list.")
@_chatty
def results(store: str, wheres: tuple[str, ...], csv_path: str | None, parquet_path: str | None,
            as_json: bool) -> None:
    """List a sweep's stored points (STORE: results.sqlite, or the folder holding it), filtered and exported."""
    from asicsim.studies.sweep import read_store

    frame = read_store(store)
    for cond in wheres:
        key, eq, text = cond.partition("=")
        if not eq or key not in frame.columns:
            cols = ", ".join(c for c in frame.columns if not c.startswith("_"))
            raise InputError("--where", key or cond, f"takes FIELD=VALUE with FIELD one of: {cols}")
        import yaml

        value = yaml.safe_load(text)
        frame = frame[frame[key].astype(str) == str(value)]
    for target, write in ((csv_path, lambda p: frame.to_csv(p, index=False)),
                          (parquet_path, lambda p: frame.to_parquet(p, index=False))):
        if target:
            try:
                write(target)
            except (OSError, ImportError) as e:
                raise InputError(target, None, f"cannot write: {e}") from None
            _OUT.status(f"wrote {len(frame):,} rows to {target}")
    if as_json:
        click.echo(frame.to_json(orient="records", indent=2))
    elif not (csv_path or parquet_path):
        shown = frame.attrs.get("point_fields", []) + [c for c in ("ok", "ttft_ms", "tpot_ms", "tokens_per_s",
                                                                   "tokens_per_s_per_user", "reason")
                                                       if c in frame.columns]
        click.echo(frame[shown].to_string(index=False, max_colwidth=60) if len(frame) else "no rows")
        _OUT.status(f"{len(frame):,} points; --csv, --parquet or --json export every column")


_DTYPE_HELP = ("Number format of weights and compute: int8 is W8A8 (int8 activations, the arrays' int8 rate); w8a16 "
               "is weight-only int8 (1-byte weights widened to bf16 on the vector lanes, products at the bf16 rate); "
               "int4 is weight-only with group scales.")
_KV_DTYPE_HELP = ("Number format of the KV cache (default: 8-bit for fp8 and int8, 16-bit otherwise, w8a16 and "
                  "int4 included), e.g. --dtype w8a16 --kv-dtype int8 as jetstream-pytorch's int8.")


def _split_options(command):
    """The chips and the split of one model over them, the same on predict and serve."""
    for option in reversed([
        click.option("--chips", type=click.IntRange(min=1), default=None,
                     help="Run on N chips of the system's kind, on its network (a chip preset: the chip's own)."),
        click.option("--tp", type=click.IntRange(min=1), default=None,
                     help="Tensor-parallel ranks per layer (default: the chips the other degrees leave)."),
        click.option("--pp", type=click.IntRange(min=1), default=None, help="Pipeline stages (default 1)."),
        click.option("--ep", type=click.IntRange(min=1), default=None,
                     help="Expert-parallel ranks for MoE layers: 1 or equal to --tp (default 1)."),
    ]):
        command = option(command)
    return command


@main.command()
@click.option("--model", required=True, help="A shipped model name (models/NAME.json) or a config.json path.")
@click.option("--system", required=True, help="A preset name or a chip/system YAML path.")
@click.option("--dtype", type=click.Choice([d.value for d in DType]), default="bf16", show_default=True,
              help=_DTYPE_HELP)
@click.option("--kv-dtype", type=click.Choice([d.value for d in KV_DTYPES]), default=None, help=_KV_DTYPE_HELP)
@click.option("--batch", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--prompt", type=click.IntRange(min=1), default=512, show_default=True, help="Prompt tokens.")
@click.option("--generate", type=click.IntRange(min=1), default=128, show_default=True, help="Tokens to generate.")
@click.option("--mapping", type=click.Choice(["temporal", "spatial"]), default=None,
              help="Override the chip's mapping: temporal (one set of arrays reused) or spatial (per-layer stages).")
@_split_options
@click.option("--dp", type=click.IntRange(min=1), default=None, help="Data-parallel replicas (default 1).")
@click.option("--micro-batches", type=click.IntRange(min=1), default=None,
              help="Micro-batches through the pipeline stages (default: min(batch, pp)).")
@click.option("--fast/--exact", default=None,
              help="--fast simulates the prefill and sampled decode steps and interpolates the rest (within "
                   "0.5 %); --exact simulates every step. Default: exact, unless that is more than one run may "
                   "simulate (8M tasks, ~5 GB): then fast, with a note on stderr.")
@click.option("--runtime", default=None, metavar="PROFILE",
              help="The serving stack's profile: per-request and per-step costs beside the chip (bare, the "
                   "default, adds nothing; trtllm-0.5, lmdeploy-0.1, trtllm-bench, or a profile YAML path). "
                   "How a profile shapes serving steps (jetstream-pytorch's) applies in serve, not here.")
@click.option("--lora", default=None, metavar="RANK[:TARGETS]",
              help="LoRA-style adapters of RANK on the projections TARGETS (comma-separated; default "
                   "qkv,o,gate_up,down), e.g. 16 or 8:qkv,o. A hardwired chip keeps them in its KV SRAM.")
@click.option("--json", "as_json", is_flag=True,
              help="Print one JSON object (metrics, the plan, per-link utilisation) instead of a table.")
@click.option("--trace", "trace_path", type=click.Path(dir_okay=False), default=None,
              help="Write a Chrome/Perfetto trace-event JSON of the run (gzip-compressed if it ends in .gz).")
@click.option("--trace-steps", default=None, metavar="all|first:N|every:K",
              help="Steps the trace keeps: all, the prefill and the first N decode steps, or every K-th "
                   "decode step (default first:8: a few MB that opens quickly).")
@_chatty
def predict(model: str, system: str, dtype: str, kv_dtype: str | None, batch: int, prompt: int, generate: int, mapping: str | None,
            chips: int | None, tp: int | None, pp: int | None, ep: int | None, dp: int | None,
            micro_batches: int | None, fast: bool | None, runtime: str | None, lora: str | None, as_json: bool,
            trace_path: str | None, trace_steps: str | None) -> None:
    """Predict latency and throughput of one model on one system."""
    from functools import partial

    from asicsim.api import predict as run_predict
    from asicsim.compile import BudgetError
    from asicsim.compile.adapters import parse_lora
    from asicsim.report_text import comparison_table

    steps = _trace_steps(trace_path, trace_steps)
    adapters = parse_lora(lora) if lora is not None else None
    go = partial(run_predict, model, system, batch=batch, prompt=prompt, generate=generate, dtype=dtype,
                 kv_dtype=kv_dtype, adapters=adapters, mapping=mapping, chips=chips, tp=tp, pp=pp, ep=ep, dp=dp,
                 micro_batches=micro_batches, runtime=runtime)
    with _Stage(f"simulating {model} on {system}"):
        try:
            result = go(fast=bool(fast))
        except BudgetError as e:
            if fast is not None:  # --exact asked for: refuse with the estimate
                raise
            _OUT.status(f"note: every step would be too many to simulate ({e.reason.split(';')[0]}); simulating the "
                      "prefill and sampled decode steps instead (--fast: within 0.5 %); --exact refuses instead.")
            result = go(fast=True)
    if as_json:
        summary = result.summary()
        summary.pop("block_utilisation")
        click.echo(json.dumps(summary, indent=2))
    else:
        click.echo(comparison_table([result]))
    if steps:
        _write_traces([result], trace_path, steps)


@main.command()
@click.option("--repeat", type=click.IntRange(min=1), default=3, show_default=True, help="Runs to take the median of.")
@click.option("--workload", "workloads", type=click.Choice(["quickstart", "scale-out", "generate-10k", "groq-256", "serve-1k",
                                                   "sweep-500", "gpt3-block"]), multiple=True,
              help="Which reference workload to time (repeatable; default: all but sweep-500 and gpt3-block).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of the workloads' medians instead.")
def bench(repeat: int, workloads: tuple[str, ...], as_json: bool) -> None:
    """Time reference workloads: wall time, tasks simulated, engine tasks/s, peak memory."""
    from asicsim.bench import DEFAULT, measure, render

    records = measure(repeat, workloads or DEFAULT)
    click.echo(json.dumps(records, indent=2) if as_json else render(records))


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of rows instead of a table.")
@click.option("--kind", "kinds", multiple=True, type=click.Choice(["gemm", "membw", "link", "collective", "decode", "prefill", "serving"]),
              help="Only rows of this kind (repeatable).")
@click.option("--chip", "chip_names", multiple=True, metavar="PRESET", help="Only rows on this chip (repeatable).")
@click.option("--markdown", is_flag=True, help="Print docs/validation.md (the table in both groups, with summaries).")
@_chatty
def validate(as_json: bool, kinds: tuple[str, ...], chip_names: tuple[str, ...], markdown: bool) -> None:
    """Compare predictions with public measurements of real chips (calibration rows apart)."""
    from dataclasses import asdict

    from asicsim.validation import measurements, page, pending, run_checks, table

    known = sorted({r["chip"] for r in measurements()})
    for name in chip_names:
        if name not in known:
            raise InputError("--chip", name, f"no measurement row is on this chip; rows cover: {', '.join(known)}")
    with _Stage("simulating every measured setup"):
        checks = run_checks(kinds=set(kinds) or None, chips=set(chip_names) or None)
    waiting = pending(kinds=set(kinds) or None, chips=set(chip_names) or None)
    if as_json:
        click.echo(json.dumps([asdict(c) | {"error": c.error} for c in checks]
                              + [{"id": r["id"], "chip": r["chip"], "model": r["model"], "metric": r["metric"],
                                  "measured": float(r["value"]), "predicted": None, "conditions": r["conditions"],
                                  "source": r["source"], "chips": int(r["chips"] or 0), "role": r["role"],
                                  "runtime": r.get("runtime") or "bare", "error": None} for r in waiting],
                              indent=2))
    elif markdown:
        click.echo(page(checks, waiting), nl=False)
    else:
        click.echo(table(checks, waiting))


def _group_options(command):
    """--prefill-chips/-tp/-pp/-ep and --decode-chips/-tp/-pp/-ep: each group of a pair split as --chips/--tp/
    --pp/--ep split one system."""
    for role in ("decode", "prefill"):
        for name, what in reversed((("chips", "chips of its system's kind"), ("tp", "tensor-parallel ranks"),
                                    ("pp", "pipeline stages"), ("ep", "expert-parallel ranks"))):
            command = click.option(f"--{role}-{name}", f"{role}_{name}", type=click.IntRange(min=1), default=None,
                                   help=f"Disaggregated: the {role} group's {what} (as --{name} for one system).")(
                command)
    return command


@main.command()
@click.option("--model", required=True, help="A shipped model name (models/NAME.json) or a config.json path.")
@click.option("--system", default=None, help="A preset name or a chip/system YAML path (or --prefill-system "
                                             "and --decode-system).")
@click.option("--prefill-system", default=None,
              help="Disaggregated serving: prefill on this system (with --decode-system instead of --system).")
@click.option("--decode-system", default=None,
              help="Disaggregated serving: decode on this system, each request's KV cache moved over --kv-link-gbps.")
@click.option("--kv-link-gbps", type=float, default=64.0, show_default=True,
              help="Disaggregated: the link's GB/s one way (default PCIe Gen5 x16 at peak; docs/sources.md K1).")
@click.option("--kv-link-latency-us", type=float, default=2.0, show_default=True,
              help="Disaggregated: the link's latency per transfer (an assumption; docs/sources.md K1).")
@_split_options
@_group_options
@click.option("--rate", type=float, default=None, help="Open loop: Poisson arrivals at R requests/s.")
@click.option("--burstiness", type=float, default=1.0, show_default=True,
              help="With --rate: the coefficient of variation of the gaps between arrivals (1: Poisson; "
                   "above 1: gamma-distributed gaps, the same mean rate in bursts).")
@click.option("--concurrency", type=int, default=None,
              help="Closed loop: C users, each sending its next request when the last finishes.")
@click.option("--trace-file", "trace_file", type=click.Path(dir_okay=False), default=None,
              help="Requests from a CSV of arrival_s,prompt,output rows (instead of --rate/--concurrency).")
@click.option("--requests", type=int, default=100, show_default=True, help="How many requests to serve.")
@click.option("--prompt", default="512", show_default=True, metavar="P|LO-HI",
              help="Prompt tokens: fixed, or uniform over LO-HI.")
@click.option("--generate", default="128", show_default=True, metavar="G|LO-HI",
              help="Output tokens: fixed, or uniform over LO-HI.")
@click.option("--lengths", default=None, metavar="PRESET",
              help="Prompt and output lengths drawn (seeded) from a benchmark's published statistics instead of "
                   "--prompt/--generate: openorca (MLPerf Llama-2-70B), sharegpt, fixed-128-128, fixed-1000-1000, "
                   "fixed-2048-2048 (trtllm-bench); see docs/serving.md.")
@click.option("--scheduler", type=click.Choice(["static", "continuous", "chunked"]), default="continuous",
              show_default=True,
              help="static: batch, prefill, decode until all finish; continuous: admit and retire every iteration; "
                   "chunked: continuous, prompts prefilled in chunks that ride with the decodes in one step (a "
                   "disaggregated pair: its prefill group prefills in steps of --chunk tokens).")
@click.option("--chunk", type=int, default=512, show_default=True,
              help="With --scheduler chunked: tokens per iteration (each decode takes one, prefill chunks the rest).")
@click.option("--kv-cache", "kv_cache", type=click.Choice(["reserved", "paged"]), default="reserved",
              show_default=True,
              help="reserved: a request's whole KV (prompt + output) is reserved at admission; paged: pages "
                   "allocated as the KV grows, the newest request preempted (see --preemption) when they run out.")
@click.option("--page-tokens", type=int, default=16, show_default=True, help="With --kv-cache paged: tokens per page.")
@click.option("--preemption", type=click.Choice(["recompute", "swap"]), default="recompute", show_default=True,
              help="With --kv-cache paged, what a preempted request loses: recompute: its KV, prefilled again; swap: "
                   "nothing, its KV pages copied to host memory and back over --host-link-gbps (the replica waits).")
@click.option("--host-link-gbps", type=float, default=64.0, show_default=True,
              help="With --preemption swap: each chip's link to host memory, GB/s one way (default PCIe Gen5 x16 at "
                   "peak; docs/sources.md K1).")
@click.option("--host-link-latency-us", type=float, default=2.0, show_default=True,
              help="With --preemption swap: the host link's latency per copy (an assumption; docs/sources.md K1).")
@click.option("--replicas", type=int, default=1, show_default=True,
              help="Copies of the system, or of the prefill/decode pair (each its own batch and KV cache), behind "
                   "one queue; each request goes to the copy with the fewest outstanding requests (ties: the lowest).")
@click.option("--runtime", default=None, metavar="PROFILE",
              help="The serving stack's profile every step is costed with, as predict's (bare, the default, adds "
                   "nothing; trtllm-bench, trtllm-0.5, lmdeploy-0.1, or a profile YAML path); jetstream-pytorch "
                   "shapes the steps as that server does (one-prompt padded prefills, fixed-shape decode steps "
                   "over every slot's whole cache; --scheduler continuous, --kv-cache reserved).")
@click.option("--max-batch", type=int, default=None,
              help="Most sequences in a batch, per replica (default: as many of the longest request as the KV cache "
                   "holds, at most 256).")
@click.option("--bucket", type=int, default=256, show_default=True,
              help="Round contexts up to a multiple of this many tokens when costing a step (1: exact).")
@click.option("--dtype", type=click.Choice([d.value for d in DType]), default="bf16", show_default=True,
              help=_DTYPE_HELP)
@click.option("--kv-dtype", type=click.Choice([d.value for d in KV_DTYPES]), default=None, help=_KV_DTYPE_HELP)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the arrival and length draws.")
@click.option("--slo-ttft-ms", type=float, default=2000.0, show_default=True, help="Goodput SLO on time to first token.")
@click.option("--slo-tpot-ms", type=float, default=200.0, show_default=True, help="Goodput SLO on time per output token.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object of the metrics instead of a table.")
@click.option("--trace", "trace_out", type=click.Path(dir_okay=False), default=None,
              help="Write a Perfetto/Chrome trace of counter tracks (KV cache held, requests admitted, decode "
                   "batch) over the run to this file (.gz: gzip).")
@_chatty
def serve(model: str, system: str | None, prefill_system: str | None, decode_system: str | None,
          kv_link_gbps: float, kv_link_latency_us: float, chips: int | None, tp: int | None, pp: int | None,
          ep: int | None, prefill_chips: int | None, prefill_tp: int | None, prefill_pp: int | None,
          prefill_ep: int | None, decode_chips: int | None, decode_tp: int | None, decode_pp: int | None,
          decode_ep: int | None, rate: float | None, burstiness: float, concurrency: int | None, trace_file: str | None,
          requests: int, prompt: str, generate: str, lengths: str | None, scheduler: str, chunk: int, kv_cache: str,
          page_tokens: int, preemption: str, host_link_gbps: float, host_link_latency_us: float, replicas: int,
          runtime: str | None, max_batch: int | None, bucket: int, dtype: str, kv_dtype: str | None, seed: int,
          slo_ttft_ms: float,
          slo_tpot_ms: float, as_json: bool, trace_out: str | None) -> None:
    """Serve a stream of requests: queueing, batching and the KV-cache limit over simulated time,
    each step a simulated run of the model (see docs/serving.md)."""
    from asicsim import serving

    given = [n for n, v in (("--rate", rate), ("--concurrency", concurrency), ("--trace-file", trace_file))
             if v is not None]
    if len(given) != 1:
        raise InputError("serve", None, "give exactly one of --rate R (open loop), --concurrency C (closed loop) "
                         f"or --trace-file FILE; got {', '.join(given) or 'none'}")
    p, g = _span("--prompt", prompt), _span("--generate", generate)
    drawn = None
    if lengths is not None:
        from dataclasses import replace

        from asicsim.serving_lengths import preset

        ctx = click.get_current_context()
        given = [f"--{n}" for n in ("prompt", "generate", "trace_file")
                 if ctx.get_parameter_source(n) is click.core.ParameterSource.COMMANDLINE]
        if given:
            raise InputError("--lengths", None, f"{lengths} draws the prompt and output lengths itself; drop "
                             f"{', '.join(given)}")
        drawn = preset(lengths).draw(requests, seed)
    if trace_file is not None:
        wl = serving.load_trace(trace_file)
    elif rate is not None:
        wl = serving.poisson(rate, requests, prompt=p, output=g, seed=seed, burstiness=burstiness, lengths=drawn)
    else:
        wl = serving.closed_loop(concurrency, requests, prompt=p, output=g, seed=seed, lengths=drawn)
    if drawn is not None:
        wl = replace(wl, source=f"--lengths {lengths}")
    split = prefill_system is not None or decode_system is not None
    if split and (system is not None or prefill_system is None or decode_system is None):
        raise InputError("serve", None, "disaggregated serving takes --prefill-system P and --decode-system D "
                         "(both, and no --system)")
    if not split and system is None:
        raise InputError("serve", None, "give --system S, or --prefill-system P and --decode-system D")
    if split and scheduler == "static":
        raise InputError("--scheduler", None, "a disaggregated pair prefills in batches (continuous) or in chunks "
                         "(chunked) and decodes continuously; --scheduler static applies to one system")
    if split and preemption != "recompute":
        raise InputError("--preemption", None, "a disaggregated pair's decode group preempts by sending the request "
                         "back to the prefill group (recompute); swap applies to one system")
    if split and any(v is not None for v in (chips, tp, pp, ep)):
        raise InputError("--chips", None, "--chips/--tp/--pp/--ep choose one system's split; a disaggregated pair "
                         "takes --prefill-chips/--prefill-tp/... and --decode-chips/--decode-tp/... for its groups")
    layouts = {role: {k: v for k, v in zip(("chips", "tp", "pp", "ep"), vals) if v is not None}
               for role, vals in (("prefill", (prefill_chips, prefill_tp, prefill_pp, prefill_ep)),
                                  ("decode", (decode_chips, decode_tp, decode_pp, decode_ep)))}
    if not split and (layouts["prefill"] or layouts["decode"]):
        raise InputError("--prefill-chips", None, "--prefill-*/--decode-* split the groups of a disaggregated pair "
                         "(--prefill-system and --decode-system); one system takes --chips/--tp/--pp/--ep")
    if split:
        system = f"{prefill_system} prefill + {decode_system} decode"
        link = serving.KVLink(kv_link_gbps, kv_link_latency_us * 1e3)
        with _Stage(f"serving {model} on {system}"):
            result = serving.serve_disaggregated(model, prefill_system, decode_system, wl, link=link,
                                                 max_batch=max_batch, bucket=bucket, dtype=dtype, kv_dtype=kv_dtype,
                                                 slo_ttft_ms=slo_ttft_ms, slo_tpot_ms=slo_tpot_ms,
                                                 kv_cache=kv_cache, page_tokens=page_tokens,
                                                 prefill_layout=layouts["prefill"], decode_layout=layouts["decode"],
                                                 prefill_chunk=chunk if scheduler == "chunked" else None,
                                                 replicas=replicas, runtime=runtime)
    else:
        with _Stage(f"serving {model} on {system}"):
            result = serving.serve(model, system, wl, scheduler=scheduler, max_batch=max_batch, bucket=bucket,
                                   dtype=dtype, kv_dtype=kv_dtype, slo_ttft_ms=slo_ttft_ms, slo_tpot_ms=slo_tpot_ms, chips=chips,
                                   tp=tp, pp=pp, ep=ep, chunk=chunk, kv_cache=kv_cache, page_tokens=page_tokens,
                                   replicas=replicas, preemption=preemption,
                                   host_link=serving.KVLink(host_link_gbps, host_link_latency_us * 1e3),
                                   runtime=runtime)
    if as_json:
        click.echo(json.dumps({"model": model, "system": system, **result.metrics, "notes": result.notes},
                              indent=2))
    else:
        click.echo(serving.table(result, f"{model} on {system}"))
    if trace_out is not None:
        from asicsim.perfetto import write_serving_trace

        try:
            info = write_serving_trace(result, trace_out, f"serving {model} on {system}")
        except OSError as e:
            raise InputError("--trace", None, f"cannot write {trace_out}: {e.strerror or e}") from None
        click.echo(f"wrote {trace_out}: {info['counter_samples']:,} counter samples, {info['bytes']:,} bytes", err=True)


def _span(name: str, text: str) -> int | tuple[int, int]:
    """A token count, or a LO-HI range."""
    try:
        if "-" in text.strip()[1:]:
            lo, hi = text.split("-", 1)
            return int(lo), int(hi)
        return int(text)
    except ValueError:
        raise InputError(name, None, f"{text!r} is not a whole number of tokens or a LO-HI range") from None


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of a table.")
def chips(as_json: bool) -> None:
    """List the chip and system presets: peak bf16 TFLOP/s, memory, die area (estimated and public, per
    chip; see docs/area.md) and the network between chips. With --json a hardwired chip also names
    the model in its ROM (hardwired_identity: model, weights_id and the config fingerprint a run
    is checked against)."""
    from asicsim.hardware.catalog import catalog

    rows = catalog()
    for r in rows:
        r["hardwired_identity"] = _hardwired_identity(r["name"]) if r["hardwired"] else None
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    from asicsim.tables import Table, render_text

    body = []
    for r in rows:
        net = r["network"]
        link = f"{net['topology']}, {net['link_gbps_each_way']:g}" if net else "-"
        if net and net["in_switch_reduction"]:
            link += ", in-switch reduction"
        tflops = r["bf16_tflops"] * r["chips"]
        body.append([r["name"], f"{r['chips']:,}", r["mapping"], f"{tflops:,.0f}" if tflops >= 10 else f"{tflops:.2g}",
                     f"{r['hbm_gb'] * r['chips']:,.0f}", f"{r['hbm_gbps'] * r['chips']:,.0f}",
                     f"{r['sram_mb'] * r['chips']:,.0f}", _mm2(r["area_mm2_estimate"]), _mm2(r["area_mm2_public"]),
                     link])
    click.echo(render_text([Table("", ["name", "chips", "mapping", "bf16 TFLOP/s", "HBM GB", "HBM GB/s", "SRAM MB",
                                       "mm² est", "mm² pub", "network (GB/s each way per link)"], body,
                                  ["rows give the whole system: a system's TFLOP/s, HBM and SRAM are its chips' "
                                   "together; die areas are per chip ('-': no process node or no public area)"],
                                  labels=1, left=(2, 9))]))


def _hardwired_identity(name: str) -> dict:
    """What a hardwired preset's ROM holds: the model's name, the declared weights, the fingerprint of
    the model's shape (compile.placement.model_fingerprint: a run is refused unless its model has
    this name and this fingerprint), the bits per weight and the ROM's size."""
    from asicsim.compile.placement import model_fingerprint
    from asicsim.hardware import load_system
    from asicsim.model import load_model

    rom = load_system(name).chip.rom
    return {"model": rom.model, "weights_id": rom.weights_id or None,
            "fingerprint": model_fingerprint(load_model(rom.model)), "weight_bits": rom.weight_bits,
            "rom_gbit": rom.capacity_gbit}


def _mm2(x: float | None) -> str:
    return "-" if x is None else f"{x:,.0f}"


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of a table.")
def models(as_json: bool) -> None:
    """List the shipped models: parameters, active parameters, layer mix, KV and state bytes."""
    from asicsim.model.catalog import catalog

    rows = catalog()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    from asicsim.tables import Table, render_text

    body = [[r["name"], f"{r['params'] / 1e9:.2f}B", f"{r['active_params'] / 1e9:.2f}B",
             f"{r['kv_bytes_per_token']:,.0f}", f"{r['state_bytes_per_sequence']:,.0f}",
             ", ".join(f"{k} {v}" for k, v in r["layer_mix"].items())] for r in rows]
    header = ["name", "params", "active", "KV B/token", "state B/seq", "layer mix"]
    click.echo(render_text([Table("", header, body, left=(5,))]))

if __name__ == "__main__":
    main()
