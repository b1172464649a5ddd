"""Text shared by the tests' scenario files."""


def economics(*chips: str) -> str:
    """A scenario's ``economics:`` block (every figure a stand-in, sourced 'test') pricing the
    ``chips`` lines given (``"h100-sxm: {chip_price_usd: ...}"``)."""
    lines = ["economics:", "  electricity_usd_per_kwh: 0.1", "  electricity_source: test",
             "  service_life_months: 48", "  service_life_source: test", "  utilisation: 0.5",
             "  utilisation_source: test", "  model_lifetime_months: 12", "  model_lifetime_source: test",
             "  chips:", *(f"    {c}" for c in chips)]
    return "\n".join(lines) + "\n"


def run_json(tmp_path, text: str) -> dict:
    """``asicsim run`` on the scenario ``text``: what ``--json`` prints."""
    import json

    from click.testing import CliRunner

    from asicsim.cli import main

    path = tmp_path / "scenario.yaml"
    path.write_text(text)
    result = CliRunner().invoke(main, ["run", str(path), "--out", str(tmp_path / "o"), "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)
