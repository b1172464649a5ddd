"""The command line: ``asicsim run``, ``predict``, ``bench``, ``models``.

Bad input (an InputError) prints one paragraph to stderr and exits with status 2; it never
shows a traceback.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

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


@click.group(cls=_Group)
@click.version_option(package_name="asicsim")
def main() -> None:
    """asicsim: simulate transformer inference on programmable and hardwired chips."""


@main.command()
@click.argument("scenario", type=click.Path(dir_okay=False))
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Output folder for results.json (default: results/<scenario name>).")
def run(scenario: str, out: str | None) -> None:
    """Run SCENARIO.yaml: each system in turn; print a table and write results.json."""
    from asicsim.report_text import comparison_table
    from asicsim.scenario import run_scenario, write_results

    def progress(name: str) -> None:
        if sys.stderr.isatty():
            click.echo(f"simulating {name} ...", err=True)

    spec, results = run_scenario(scenario, progress)
    click.echo(comparison_table(results))
    path = write_results(spec, results, Path(out) if out else Path("results") / spec.name)
    click.echo(f"\nwrote {path}")


@main.command()
@click.option("--model", required=True, help="A shipped model name (models/NAME.json) or a config.json path.")
@click.option("--system", required=True, help="A preset name or a chip/system YAML path.")
@click.option("--dtype", type=click.Choice([d.value for d in DType]), default="bf16", show_default=True,
              help="Number format of weights and compute.")
@click.option("--batch", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--prompt", type=click.IntRange(min=1), default=512, show_default=True, help="Prompt tokens.")
@click.option("--generate", type=click.IntRange(min=1), default=128, show_default=True, help="Tokens to generate.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")
def predict(model: str, system: str, dtype: str, batch: int, prompt: int, generate: int, as_json: bool) -> None:
    """Predict latency and throughput of one model on one system."""
    from asicsim.api import predict as run_predict
    from asicsim.report_text import comparison_table

    result = run_predict(model, system, batch=batch, prompt=prompt, generate=generate, dtype=dtype)
    if as_json:
        summary = result.summary()
        summary.pop("block_utilisation")
        click.echo(json.dumps(summary, indent=2))
    else:
        click.echo(comparison_table([result]))


@main.command()
@click.option("--repeat", type=click.IntRange(min=1), default=3, show_default=True, help="Runs to take the median of.")
def bench(repeat: int) -> None:
    """Time the quickstart workload: wall time, tasks simulated, engine tasks/s, peak memory."""
    from asicsim.bench import run_bench

    click.echo(run_bench(repeat))


if __name__ == "__main__":
    main()
