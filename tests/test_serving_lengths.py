"""Length presets of public serving benchmarks: published means, bounds, seeded draws."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from asicsim.cli import main
from asicsim.errors import InputError
from asicsim.serving_lengths import PRESETS, clipped_mean, preset

N = 20_000  # sampling error of a mean ~1 % at this size for the long-tailed presets


@pytest.mark.parametrize("name, prompt_mean, output_mean", [
    ("openorca", 512.0, 294.45),    # output: MLPerf reference run; input: uniform over < 1,024 (assumed)
    ("sharegpt", 161.31, 337.99),   # vLLM paper, Fig. 11
])
def test_sample_means_match_the_published_means(name, prompt_mean, output_mean):
    pairs = np.array(preset(name).draw(N, seed=5))
    assert pairs[:, 0].mean() == pytest.approx(prompt_mean, rel=0.03)
    assert pairs[:, 1].mean() == pytest.approx(output_mean, rel=0.03)
    p = PRESETS[name]
    assert pairs[:, 0].min() >= p.prompt.lo and pairs[:, 0].max() <= p.prompt.hi
    assert pairs[:, 1].min() >= p.output.lo and pairs[:, 1].max() <= p.output.hi
    assert pairs[:, 1].std() > 0.5 * output_mean  # a spread, not a constant


@pytest.mark.parametrize("name, isl, osl", [("fixed-128-128", 128, 128), ("fixed-1000-1000", 1000, 1000),
                                            ("fixed-2048-2048", 2048, 2048)])
def test_fixed_presets_are_fixed(name, isl, osl):
    assert set(preset(name).draw(50, seed=1)) == {(isl, osl)}


def test_the_location_is_solved_for_the_clipped_mean():
    # clipping at the bounds moves the mean; the preset's location accounts for it
    from asicsim.serving_lengths import _location

    mu = _location(337.99, 4, 1024)
    assert clipped_mean(mu, 4, 1024) == pytest.approx(337.99, rel=1e-9)
    x = np.clip(np.exp(np.random.default_rng(0).normal(mu, 1.0, 400_000)), 4, 1024)
    assert x.mean() == pytest.approx(337.99, rel=0.01)  # the closed form agrees with sampling
    unclipped = np.log(337.99) - 0.5  # a lognormal's own mean, ignoring the clip, is too low after clipping
    assert clipped_mean(unclipped, 4, 1024) < 0.95 * 337.99


def test_same_seed_same_lengths():
    a, b, c = (preset("sharegpt").draw(300, seed=s) for s in (7, 7, 8))
    assert a == b and a != c


def test_unknown_preset_and_conflicting_options_exit_2():
    with pytest.raises(InputError, match="presets are: fixed-128-128"):
        preset("mmlu")
    base = ["serve", "--model", "llama-3.1-8b", "--system", "h100-sxm", "--concurrency", "2", "--requests", "2"]
    out = CliRunner().invoke(main, base + ["--lengths", "mmlu"])
    assert out.exit_code == 2 and "openorca" in out.output and "Traceback" not in out.output
    out = CliRunner().invoke(main, base + ["--lengths", "sharegpt", "--generate", "64"])
    assert out.exit_code == 2 and "--generate" in out.output


def test_serve_runs_a_preset():
    out = CliRunner().invoke(main, ["serve", "--model", "llama-3.1-8b", "--system", "h100-sxm", "--concurrency", "4",
                                    "--requests", "8", "--lengths", "fixed-128-128", "--json"])
    assert out.exit_code == 0, out.output
    import json

    doc = json.loads(out.output)
    assert doc["requests"] == 8 and doc["decode_steps"] == 2 * 127  # two waves of four, 127 decode steps each


def test_a_serving_scenario_takes_lengths_and_dtype(tmp_path, monkeypatch):
    from asicsim import serving
    from asicsim.scenario import run_scenario

    seen = []
    real = serving.simulate

    def spy(wl, costs, budget, **kw):
        seen.append(({(r.prompt, r.output) for r in wl.requests}, costs.dtype, budget.capacity_bytes))
        return real(wl, costs, budget, **kw)

    monkeypatch.setattr(serving, "simulate", spy)
    path = tmp_path / "s.yaml"
    base = "kind: serving\nname: s\nmodel: llama-3.1-8b\nsystems: [h100-sxm]\nrates: [50]\nrequests: 6\n"
    path.write_text(base + "lengths: fixed-128-128\ndtype: fp8\n")
    run_scenario(path)
    path.write_text(base)
    run_scenario(path)
    (lengths, dtype, kv_fp8), (default_lengths, bf16, kv_bf16) = seen
    assert lengths == {(128, 128)} and dtype == "fp8" and default_lengths == {(512, 128)} and bf16 == "bf16"
    assert kv_fp8 > kv_bf16  # fp8 weights leave more of the HBM to the KV cache
    path.write_text(base + "lengths: mmlu\n")
    with pytest.raises(InputError, match="lengths"):
        run_scenario(path)
