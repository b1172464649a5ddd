"""The open-vs-closed study on a small scenario: an H100, a Groq pipeline and the hardwired HC1,
Llama-3.1-8B with a 64-token prompt and 4 generated tokens.

The study promises, per chip: speed for one user and for many, J/token, chips needed, which
models of the zoo it can run, and $/Mtok, including how the hardwired chip's cost grows when its
model is superseded sooner.
"""

from __future__ import annotations

from dataclasses import replace
from itertools import pairwise
from pathlib import Path

import pytest
import yaml

from asicsim.hardware.system import PRESETS_DIR

from asicsim.compile import Workload, check_run, compile_run
from asicsim.errors import InputError
from asicsim.hardware import load_system
from asicsim.model import load_model
from asicsim.scenario import load_scenario, run_scenario
from asicsim.studies.economics import (
    HOURS_PER_MONTH,
    amortisation_months,
    cost_per_mtok,
)
from asicsim.studies.open_closed import largest_batch, zoo_reach
from asicsim.studies.open_closed_plots import write_figures

SYSTEMS = ["h100-sxm", "groq-lpu", "taalas-hc1"]
ROW_FIELDS = {
    "system", "chip", "mapping", "hardwired", "chips", "stages", "ttft_ms", "tpot_ms", "tokens_per_s_per_user",
    "decode_bound", "hbm_read_per_decode_step", "largest_batch", "batch_capped", "simulated_batch",
    "tokens_per_s", "tpot_ms_at_largest_batch", "j_per_token", "j_per_token_at_largest_batch", "power_w",
    "power_source", "zoo_runs", "zoo_cannot", "zoo_chips", "chip_price_usd", "price_source", "capex_usd",
    "amortisation_months", "usd_per_mtok", "capex_usd_per_mtok", "energy_usd_per_mtok",
    "usd_per_mtok_full_life", "usd_per_mtok_by_lifetime"}
FIGURES = {"tokens_per_s_per_user", "aggregate_tokens_per_s", "j_per_token", "usd_per_mtok_vs_model_lifetime"}


def scenario(**changes) -> dict:
    chips = {"h100-sxm": {"chip_price_usd": 27500, "source": "Barron's, Aug 2023"},
             "groq-lpu": {"chip_price_usd": 20000, "source": "Mouser, quantity one"},
             "taalas-hc1": {"chip_price_usd": 10000, "source": "assumption"}}
    doc = {"kind": "open-vs-closed", "name": "small", "model": "llama-3.1-8b", "prompt": 64, "generate": 4,
           "systems": SYSTEMS,
           "economics": {"electricity_usd_per_kwh": 0.08, "electricity_source": "EIA",
                         "service_life_months": 48, "service_life_source": "assumption",
                         "utilisation": 0.5, "utilisation_source": "assumption",
                         "model_lifetime_months": 12, "model_lifetime_source": "assumption", "chips": chips}}
    doc.update(changes)
    return doc


@pytest.fixture(scope="module")
def output(tmp_path_factory):
    path = tmp_path_factory.mktemp("oc") / "small.yaml"
    path.write_text(yaml.safe_dump(scenario()))
    return run_scenario(path)


def rows(output) -> dict[str, dict]:
    return {r["system"]: r for r in output.doc["systems"]}


def test_doc_has_every_promised_field(output):
    doc = output.doc
    assert {"model", "prompt", "generate", "dtype", "adapters", "economics", "lifetimes_months", "notes",
            "systems", "figures"} <= set(doc)
    assert [r["system"] for r in doc["systems"]] == SYSTEMS
    for r in doc["systems"]:
        assert ROW_FIELDS <= set(r), ROW_FIELDS - set(r)
        assert r["tokens_per_s"] >= r["tokens_per_s_per_user"] > 0
        assert r["usd_per_mtok"] > 0 and r["power_w"] > 0
    assert {f["name"] for f in doc["figures"]} == FIGURES
    assert all({"name", "kind", "data"} <= set(f) for f in doc["figures"])
    assert rows(output)["groq-lpu"]["chips"] > 1
    assert rows(output)["taalas-hc1"]["hbm_read_per_decode_step"] == 0
    for name in SYSTEMS:
        assert name in output.text


def test_hardwired_chip_runs_only_its_own_model(output):
    r = rows(output)
    assert r["taalas-hc1"]["zoo_runs"] == ["llama-3.1-8b"]
    assert len(r["h100-sxm"]["zoo_runs"]) > 1 and len(r["groq-lpu"]["zoo_runs"]) > 1


def test_zoo_reach_agrees_with_compile_run():
    """The cheap check refuses exactly what compiling refuses (on the HC1, where compiling is fast)."""
    system, wl = load_system("taalas-hc1"), Workload(1, 32, 2)
    for name, chips in zoo_reach(system, wl).items():
        if chips is None:
            with pytest.raises(InputError):
                compile_run(load_model(name), system, wl)
        else:
            assert compile_run(load_model(name), system, wl).meta["chips"] == chips


def test_hardwired_cost_rises_as_the_model_lifetime_falls(output):
    for r in output.doc["systems"]:
        curve = list(r["usd_per_mtok_by_lifetime"].values())
        if r["hardwired"]:
            assert all(a > b for a, b in pairwise(curve))  # 3 months dearest, 36 cheapest
            assert r["usd_per_mtok"] > r["usd_per_mtok_full_life"]
        else:
            assert curve == pytest.approx([curve[0]] * len(curve))
            assert r["usd_per_mtok"] == pytest.approx(r["usd_per_mtok_full_life"])


def test_cost_per_mtok_by_hand():
    """$27,500 over 48 months, 500 W at $0.10/kWh, 10,000 tokens/s, busy half the time."""
    cost = cost_per_mtok(27_500, 48, 500, 10_000, 0.10, 0.5)
    mtok_per_hour = 10_000 * 3600 * 0.5 / 1e6
    assert cost.capex_usd_per_mtok == pytest.approx(27_500 / (48 * HOURS_PER_MONTH) / mtok_per_hour)
    assert cost.energy_usd_per_mtok == pytest.approx(0.5 * 0.10 * 0.5 / mtok_per_hour)
    assert amortisation_months(True, 48, 12) == 12 and amortisation_months(False, 48, 12) == 48


@pytest.mark.parametrize("system", ["taalas-hc1", "h100-sxm"])
def test_largest_batch_fits_and_one_more_does_not(system):
    model, sys_, wl = load_model("llama-3.1-8b"), load_system(system), Workload(1, 64, 4)
    batch = largest_batch(model, sys_, wl, max_batch=1 << 20)
    assert 1 < batch < 1 << 20
    compile_run(model, sys_, replace(wl, batch=batch))
    with pytest.raises(InputError):
        compile_run(model, sys_, replace(wl, batch=batch + 1))


def test_largest_batch_on_a_scale_out_chip_keeps_the_chips_of_batch_one():
    """Groq grows by chips as the KV cache grows; the search stops where one more sequence would
    need another chip."""
    model, sys_, wl = load_model("llama-3.1-8b"), load_system("groq-lpu"), Workload(1, 64, 4)
    batch = largest_batch(model, sys_, wl, max_batch=1 << 20)
    chips = check_run(model, sys_, wl)
    assert compile_run(model, sys_, replace(wl, batch=batch)).meta["chips"] == chips
    assert compile_run(model, sys_, replace(wl, batch=batch + 1)).meta["chips"] > chips


def test_every_system_needs_a_price(tmp_path):
    doc = scenario()
    del doc["economics"]["chips"]["groq-lpu"]
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(InputError, match="missing: groq-lpu"):
        load_scenario(path)


def test_a_chip_without_energy_spec_needs_power_w(tmp_path):
    chip = yaml.safe_load((PRESETS_DIR / "b200.yaml").read_text())
    del chip["energy"]
    (tmp_path / "b200-unpriced.yaml").write_text(yaml.safe_dump(chip))
    doc = scenario(systems=["b200-unpriced.yaml"])
    doc["economics"]["chips"] = {"b200-unpriced.yaml": {"chip_price_usd": 35000, "source": "CNBC"}}
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(InputError, match="power_w"):
        run_scenario(path)


def test_figures_are_written(output, tmp_path):
    pytest.importorskip("matplotlib")
    paths = write_figures(output.doc, tmp_path)
    assert len(paths) == len(FIGURES) and all(p.stat().st_size > 0 for p in paths)


def test_adapters_slow_the_hardwired_chip(output, tmp_path):
    doc = scenario(systems=["taalas-hc1"], adapters={"rank": 16})
    doc["economics"]["chips"] = {"taalas-hc1": scenario()["economics"]["chips"]["taalas-hc1"]}
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(doc))
    out = run_scenario(path)
    assert out.doc["adapters"]["rank"] == 16
    with_lora, plain = out.doc["systems"][0], rows(output)["taalas-hc1"]
    assert with_lora["tokens_per_s_per_user"] < plain["tokens_per_s_per_user"]
    assert with_lora["largest_batch"] < plain["largest_batch"]  # adapter weights share the KV SRAM


def test_shipped_scenario_prices_every_chip_with_a_source():
    spec = load_scenario(Path(__file__).resolve().parents[1] / "scenarios" / "open-vs-closed.yaml")
    assert spec.systems == ["h100-sxm", "b200", "tpu-v6e", "groq-lpu", "cerebras-wse3", "taalas-hc1"]
    for name in spec.systems:
        chip = spec.economics.chips[name]
        assert chip.source.strip() and (chip.power_w is None or chip.power_source.strip())
