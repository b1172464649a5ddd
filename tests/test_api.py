"""The Python API a notebook wants: ``import asicsim as asim``, chips changed by field path and
validated like a file, short reprs, and a DataFrame of runs side by side."""

from __future__ import annotations

import pytest

import asicsim as asim
from asicsim.errors import InputError


def test_a_changed_chip_runs_and_is_validated():
    h100 = asim.chip("h100-sxm")
    faster = h100.with_(**{"hbm.bandwidth_gbps_per_channel": 670, "network.bandwidth_gbps": 900})
    assert faster.hbm.bandwidth_gbps_per_channel == 670 and faster.network.bandwidth_gbps == 900
    assert h100.hbm.bandwidth_gbps_per_channel == 335  # the preset is untouched
    base = asim.predict("llama-3.1-8b", h100, prompt=32, generate=3)
    fast = asim.predict("llama-3.1-8b", faster, prompt=32, generate=3)
    assert fast.tpot_ms < 0.6 * base.tpot_ms  # twice the bandwidth, a memory-bound decode
    with pytest.raises(InputError, match="greater than 0"):
        h100.with_(**{"hbm.bandwidth_gbps_per_channel": -1})
    with pytest.raises(InputError) as e:
        h100.with_(**{"hmb.channels": 3})
    assert e.value.field == "hmb.channels" and "no field 'hmb'" in e.value.reason


def test_results_read_like_a_story():
    r = asim.predict("llama-3.1-8b", "taalas-hc1", prompt=16, generate=3)
    text = repr(r)
    assert text.startswith("Result(llama-3.1-8b on taalas-hc1") and "TPOT" in text and len(text) < 200
    assert r.to_dict()["tpot_ms"] == r.tpot_ms == r.metrics.tpot_ms
    assert r.tokens_per_s_per_user == pytest.approx(1e3 / r.tpot_ms)


def test_compare_gives_a_dataframe_row_per_system():
    df = asim.compare(["h100-sxm", "taalas-hc1", asim.system("h100-sxm", chips=2)], model="llama-3.1-8b",
                      prompt=16, generate=3)
    assert list(df["system"]) == ["h100-sxm", "taalas-hc1", "h100-sxm x2"]
    assert list(df["plan.tp"]) == [1, 1, 2]
    assert (df["tpot_ms"] > 0).all() and df.loc[1, "hbm_read_per_decode_step"] == 0


def test_a_one_chip_run_never_imports_networkx():
    """Start-up is paid once and only for what is used: networkx comes in with a multi-chip topology."""
    import subprocess
    import sys

    code = ("import sys; from asicsim.api import predict; predict('llama-3.1-8b', 'h100-sxm', prompt=16, generate=2); "
            "print('networkx' in sys.modules); predict('llama-3.1-8b', 'dgx-h100', prompt=16, generate=2); "
            "print('networkx' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "True"]


def test_a_comparison_scenario_never_imports_the_study_modules(tmp_path):
    """A plain comparison (the quickstart) loads without the study modules; another kind, or an
    unknown one (whose refusal lists every kind), brings them in."""
    import subprocess
    import sys

    (tmp_path / "bad.yaml").write_text("name: x\nkind: no-such-kind\n")
    code = ("import sys; from asicsim.errors import InputError; from asicsim.scenario import load_scenario\n"
            "from asicsim.shipped import SCENARIOS_DIR\n"
            "load_scenario(SCENARIOS_DIR / 'quickstart.yaml'); print('asicsim.studies' in sys.modules)\n"
            f"try:\n    load_scenario({str(tmp_path / 'bad.yaml')!r})\nexcept InputError as e:\n"
            "    print('context-scaling' in str(e))\n"
            "print('asicsim.studies' in sys.modules)\n"
            "print(load_scenario(SCENARIOS_DIR / 'context-scaling.yaml').kind)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "True", "True", "context-scaling"]
