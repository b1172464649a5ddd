"""Weight-only int8 (``w8a16``) and the KV cache's own format (``kv_dtype``).

w8a16 stores 1-byte weights, widens them to bf16 on the vector lanes inside the matmul
(cost.INT8_DEQUANT_OPS, read off TensorRT-LLM's converter: docs/sources.md S21) and multiplies at
the bf16 rate; ``int8`` stays W8A8. ``kv_dtype`` sets the KV cache's bytes apart from the weights'.
"""

from __future__ import annotations

from functools import cache

import pytest
from click.testing import CliRunner

from asicsim import cost
from asicsim.api import predict, run
from asicsim.cli import main
from asicsim.compile import Workload
from asicsim.dtypes import DType, default_kv_dtype
from asicsim.errors import InputError
from asicsim.hardware import load_system
from asicsim.hardware.spec import MatmulSpec, VectorSpec
from asicsim.model import load_model


def _blocks(system: str):
    chip = load_system(system).chip
    return (next(b for b in chip.blocks if b.kind == "matmul"), next(b for b in chip.blocks if b.kind == "vector"))


@cache
def _run(system: str, dtype: DType, kv: DType | None = None, prompt: int = 8, batch: int = 1):
    return run(load_model("llama-2-7b"), load_system(system), Workload(batch, prompt, 3, dtype=dtype, kv_dtype=kv))


def test_one_w8a16_matmul_is_the_bf16_tile_count_and_its_weights_unpacking():
    """By hand, on a plain array (no kernel model): a 64x256x128 product on 2 arrays of 32x32
    with int8 at twice the bf16 rate. w8a16 takes the bf16 time; the lane work is
    weights x 12/4 instructions over the lanes."""
    mm = MatmulSpec(kind="matmul", name="a", units=2, rows=32, cols=32, clock_ghz=1.0, efficiency=0.5,
                    dtype_rate={DType.BF16: 1.0, DType.INT8: 2.0}, dataflow="streaming")
    vec = VectorSpec(kind="vector", name="v", lanes=64, clock_ghz=2.0)
    # streaming dataflow: rounds x m + depth, rounds = ceil(ceil(256/32) * ceil(128/32) / 2) = 16
    cycles = 16 * 64 + (32 + 32 - 2)
    assert cost.matmul_cycles(mm, 64, 256, 128) == cycles
    assert cost.matmul_ns(mm, 64, 256, 128, 1, DType.W8A16) == pytest.approx(cycles / (1.0 * 1.0 * 0.5))
    assert cost.matmul_ns(mm, 64, 256, 128, 1, DType.INT8) == pytest.approx(cycles / (1.0 * 2.0 * 0.5))
    weights = 256 * 128
    assert cost.INT8_DEQUANT_OPS == 3.0
    assert cost.dequant_ns(mm, vec, weights, DType.W8A16) == pytest.approx(weights * 3.0 / 64 / 2.0)
    # W8A8 int8 and bf16 unpack nothing; w8a16 unpacks even where the arrays have an int8 rate
    assert cost.dequant_ns(mm, vec, weights, DType.INT8) == cost.dequant_ns(mm, vec, weights, DType.BF16) == 0.0
    assert cost.weight_bytes_per_element(DType.W8A16) == 1.0


def test_w8a16_prefill_runs_at_the_bf16_rate_not_the_int8_one():
    """A 2,048-token prefill of Llama-2-7B on an H100 is compute-bound: w8a16 takes about the bf16
    time (its weights stream in half the bytes), W8A8 int8 about half. Goes red if w8a16 runs at
    the int8 rate."""
    bf16, w8, int8 = (_run("h100-sxm", d, prompt=2048).metrics.ttft_ms for d in (DType.BF16, DType.W8A16, DType.INT8))
    assert 0.9 * bf16 <= w8 <= 1.02 * bf16
    assert w8 > 1.5 * int8


def test_w8a16_charges_the_widening_on_the_vector_lanes():
    """With one lane per A100 SM instead of 64, widening every weight (3 lane instructions each)
    sets the decode step: within 10 % of the weights' unpacking time, far beyond the HBM stream.
    Goes red if the unpacking is dropped."""
    from asicsim.hardware import SystemSpec, build_system

    base = load_system("a100-sxm-80gb")
    few = build_system(SystemSpec(name=base.name, chip=base.chip.with_(**{"cuda_cores.lanes": 108}),
                                  count=len(base.chips)))
    mm, vec = next(b for b in few.chip.blocks if b.kind == "matmul"), next(b for b in few.chip.blocks
                                                                           if b.kind == "vector")
    model = load_model("llama-2-7b")
    wl = Workload(1, 8, 3, dtype=DType.W8A16)
    from asicsim.compile.placement import numerics_for
    from asicsim.model.graph import build_graph
    from asicsim.model.ops import OpKind, StepShape

    graph = build_graph(model, StepShape(1, 1, 8), numerics_for(wl, few.chip))
    weights = sum(op.weight_bytes for op in graph.ops if op.kind is OpKind.MATMUL)  # 1 byte each
    bound = cost.dequant_ns(mm, vec, weights, DType.W8A16)
    slow = run(model, few, wl).metrics.tpot_ms * 1e6
    fast = _run("a100-sxm-80gb", DType.W8A16).metrics.tpot_ms * 1e6
    assert bound > 5 * fast
    assert bound <= slow <= 1.1 * bound


def test_w8a16_streams_one_byte_a_weight_and_a_bf16_cache_by_default():
    """A decode step reads the weights at 1 byte each, as W8A8 int8 does; the default KV cache is
    bf16 (int8's is int8), so at a long context w8a16 reads exactly the KV difference more."""
    assert default_kv_dtype(DType.W8A16) is DType.BF16 and default_kv_dtype(DType.INT8) is DType.INT8
    model = load_model("llama-2-7b")
    w8 = _run("a100-sxm-80gb", DType.W8A16, prompt=4000, batch=4)
    int8 = _run("a100-sxm-80gb", DType.INT8, prompt=4000, batch=4)
    bf16_kv = w8.metrics.bytes_per_decode_step["hbm_read"]
    int8_kv = int8.metrics.bytes_per_decode_step["hbm_read"]
    from asicsim.compile.placement import numerics_for

    kv_bf16 = model.kv_bytes(4, 4002, numerics_for(Workload(dtype=DType.W8A16), w8.plan.chip))
    assert bf16_kv - int8_kv == pytest.approx(kv_bf16 / 2, rel=0.01)
    # what is left is the weights at 1 byte each, less the embedding table (one row a token: 2 % of 7B)
    assert 0.97 * model.params() <= int8_kv - kv_bf16 / 2 <= model.params()


def test_kv_dtype_sets_the_caches_bytes_apart_from_the_weights():
    """--dtype w8a16 --kv-dtype int8 (jetstream-pytorch's int8) reads half the KV of the default
    bf16 cache and the same weights. Goes red if kv_dtype is ignored."""
    default = _run("a100-sxm-80gb", DType.W8A16, prompt=4000, batch=4)
    int8_kv = _run("a100-sxm-80gb", DType.W8A16, DType.INT8, prompt=4000, batch=4)
    same = _run("a100-sxm-80gb", DType.INT8, prompt=4000, batch=4)
    assert int8_kv.workload.kv_format is DType.INT8
    assert (int8_kv.metrics.bytes_per_decode_step["hbm_read"]
            == pytest.approx(same.metrics.bytes_per_decode_step["hbm_read"], rel=1e-9))
    assert int8_kv.metrics.bytes_per_decode_step["hbm_read"] < 0.85 * default.metrics.bytes_per_decode_step["hbm_read"]
    assert int8_kv.metrics.tpot_ms < default.metrics.tpot_ms


def test_kv_dtype_sizes_a_serving_replicas_cache():
    """The serving KV budget holds twice the tokens in an int8 cache as in a bf16 one."""
    from asicsim.serving import kv_budget

    model = load_model("llama-2-7b")
    system = load_system("a100-sxm-80gb")
    bf16 = kv_budget(model, system, "w8a16")
    int8 = kv_budget(model, system, "w8a16", kv_dtype="int8")
    assert int8.capacity_bytes == bf16.capacity_bytes
    assert bf16.numerics.kv_bytes == 2.0 and int8.numerics.kv_bytes == 1.0


def test_w8a16_mac_energy_is_bf16s():
    """The products run in bf16, so they cost the bf16 MAC energy (the A100 preset prices int8 at half)."""
    chip = load_system("a100-sxm-80gb").chip
    assert chip.energy.mac_pj(DType.W8A16) == chip.energy.mac_pj(DType.BF16) != chip.energy.mac_pj(DType.INT8)
    mm, _ = _blocks("h100-sxm")
    assert mm.peak_flops(DType.W8A16) == mm.peak_flops(DType.BF16) == mm.peak_flops(DType.INT8) / 2


# -- errors ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kv", ["w8a16", "int4"])
def test_a_weight_only_kv_format_is_refused(kv):
    with pytest.raises(InputError) as e:
        predict("llama-2-7b", "a100-sxm-80gb", dtype="w8a16", kv_dtype=kv, generate=2)
    assert e.value.field == "kv_dtype" and "weight-only" in e.value.reason
    with pytest.raises(InputError) as e:
        predict("llama-2-7b", "a100-sxm-80gb", kv_dtype="fp4", generate=2)
    assert "fp4" in e.value.reason and "--kv-dtype" in str(e.value)


def test_the_cli_refuses_a_bad_kv_dtype_in_one_paragraph(tmp_path):
    r = CliRunner().invoke(main, ["predict", "--model", "llama-2-7b", "--system", "a100-sxm-80gb", "--kv-dtype", "w8a16"])
    assert r.exit_code == 2 and "--kv-dtype" in r.output and "Traceback" not in r.output
    scenario = tmp_path / "s.yaml"
    scenario.write_text("name: s\nmodel: llama-2-7b\nsystems: [a100-sxm-80gb]\n"
                        "workload: {dtype: w8a16, kv_dtype: int4, generate: 2}\n")
    r = CliRunner().invoke(main, ["run", str(scenario), "--out", str(tmp_path / "out")])
    assert r.exit_code == 2 and "kv_dtype" in r.output and "Traceback" not in r.output
    assert "s.yaml" in r.output


def test_a_chip_cannot_give_w8a16_a_rate_of_its_own(tmp_path):
    """w8a16's products run at bf16: a chip file listing a w8a16 rate is refused, naming the field."""
    import yaml

    from asicsim.hardware.system import PRESETS_DIR

    doc = yaml.safe_load((PRESETS_DIR / "a100-sxm-80gb.yaml").read_text())
    for b in doc["blocks"]:
        if b["kind"] == "matmul":
            b["dtype_rate"]["w8a16"] = 2.0
    path = tmp_path / "chip.yaml"
    path.write_text(yaml.safe_dump(doc))
    r = CliRunner().invoke(main, ["predict", "--model", "llama-2-7b", "--system", str(path)])
    assert r.exit_code == 2 and "dtype_rate" in r.output and "w8a16" in r.output and "Traceback" not in r.output


def test_the_scenario_kv_dtype_reaches_the_run(tmp_path):
    from asicsim.scenario import WorkloadSpec

    wl = WorkloadSpec(dtype="w8a16", kv_dtype="int8").workload()
    assert wl.dtype is DType.W8A16 and wl.kv_format is DType.INT8
    assert WorkloadSpec(dtype="w8a16").workload().kv_format is DType.BF16


def test_a_serving_scenario_takes_a_kv_dtype_and_refuses_a_weight_only_one(tmp_path):
    """kind: serving passes kv_dtype to each group's KV budget (an int8 cache holds twice the
    tokens of a bf16 one in the same bytes); a weight-only format there is one clear error."""
    from asicsim import serving
    from asicsim.scenario import load_scenario

    base = "kind: serving\nname: s\nmodel: llama-2-7b\nsystems: [a100-sxm-80gb]\nrates: [1]\ndtype: w8a16\n"
    path = tmp_path / "s.yaml"
    path.write_text(base + "kv_dtype: int8\n")
    spec = load_scenario(path)
    assert spec.kv_dtype is DType.INT8
    _, budget = serving.group(load_model("llama-2-7b"), "a100-sxm-80gb", dtype=spec.dtype.value,
                              kv_dtype=spec.kv_dtype.value)
    assert budget.numerics.kv_bytes == 1.0
    path.write_text(base + "kv_dtype: w8a16\n")
    with pytest.raises(InputError) as e:
        load_scenario(path)
    assert "kv_dtype" in str(e.value) and "weight-only" in str(e.value) and "s.yaml" in str(e.value)


def test_a_serving_scenarios_kv_dtype_halves_the_kv_it_holds(tmp_path):
    """Run through `asicsim run`: the same load with kv_dtype int8 holds half the KV of the default
    (bf16) cache. Goes red if the serving study drops kv_dtype."""
    from scenario_text import run_json

    base = ("kind: serving\nname: s\nmodel: llama-2-7b\nsystems: [a100-sxm-80gb]\nrates: [1]\nrequests: 2\n"
            "prompt: 64\noutput: 4\ndtype: w8a16\n")
    peak = {}
    for kv in ("null", "int8"):
        (tmp_path / kv).mkdir()
        (row,) = [r for r in run_json(tmp_path / kv, base + f"kv_dtype: {kv}\n")["rows"] if r["fits"]]
        peak[kv] = row["peak_kv_gb"]
    assert peak["null"] > 0 and peak["int8"] == pytest.approx(peak["null"] / 2, rel=1e-9)


def test_serve_and_predict_take_kv_dtype_on_the_command_line():
    import json

    def cli(*args):
        r = CliRunner().invoke(main, list(args))
        assert r.exit_code == 0, r.output
        return json.loads(r.stdout)

    serve = ["serve", "--model", "llama-2-7b", "--system", "a100-sxm-80gb", "--concurrency", "1", "--requests", "2",
             "--prompt", "64", "--generate", "4", "--dtype", "w8a16", "--json"]
    default, int8 = cli(*serve)["peak_kv_gb"], cli(*serve, "--kv-dtype", "int8")["peak_kv_gb"]
    assert default > 0 and int8 == pytest.approx(default / 2, rel=1e-9)
    out = cli("predict", "--model", "llama-2-7b", "--system", "a100-sxm-80gb", "--dtype", "w8a16", "--kv-dtype",
              "fp8", "--generate", "2", "--json")
    assert out["dtype"] == "w8a16" and out["kv_dtype"] == "fp8"


def test_a_hardwired_chip_widens_nothing():
    """A hardwired chip's weights sit in ROM beside the MACs in their fabricated format, so w8a16
    there is the bf16 run (the HC1's arrays run every format at one rate): no lane work is charged
    for weights that are never loaded. Goes red if the widening is charged on ROM weights."""
    model, system = load_model("llama-3.1-8b"), load_system("taalas-hc1")
    w8, bf16 = (run(model, system, Workload(1, 16, 3, dtype=d)).metrics for d in (DType.W8A16, DType.BF16))
    assert w8.tpot_ms == bf16.tpot_ms and w8.ttft_ms == bf16.ttft_ms


def test_the_printed_title_names_a_kv_format_of_its_own():
    """The table's title names the number format; a KV cache kept in another format than the
    dtype's default is named there too (else `--dtype w8a16 --kv-dtype int8` prints as plain
    w8a16). The default prints as before. Goes red if the title drops kv_dtype."""
    from asicsim.report_text import comparison_grid

    args = ["predict", "--model", "llama-2-7b", "--system", "a100-sxm-80gb", "--dtype", "w8a16", "--prompt", "8",
            "--generate", "2"]
    own = CliRunner().invoke(main, ["-q", *args, "--kv-dtype", "int8"])
    plain = CliRunner().invoke(main, ["-q", *args])
    assert own.exit_code == 0 and plain.exit_code == 0, own.output + plain.output
    assert own.stdout.splitlines()[0].endswith("w8a16, KV int8")
    assert plain.stdout.splitlines()[0].endswith("generate 2, w8a16")
    # the same KV format as the dtype's default says nothing more; a summary from before kv_dtype reads
    summary = _run("a100-sxm-80gb", DType.INT8).summary()
    assert summary["kv_dtype"] == "int8" and comparison_grid([summary])[0].endswith("generate 3, int8")
    summary.pop("kv_dtype")
    assert comparison_grid([summary])[0].endswith("generate 3, int8")
    assert comparison_grid([summary | {"kv_dtype": "bf16"}])[0].endswith("int8, KV bf16")


def test_the_figure_titles_name_a_kv_format_of_its_own():
    pytest.importorskip("matplotlib")
    from asicsim.plots import _title

    assert _title(_run("a100-sxm-80gb", DType.W8A16, DType.INT8), "roofline").endswith("w8a16, KV int8)")
    assert _title(_run("a100-sxm-80gb", DType.W8A16), "roofline").endswith("generate 3, w8a16)")


def test_a_sweeps_weight_only_kv_point_is_refused_with_its_reason(tmp_path):
    """A sweep over dtype x kv_dtype with a weight-only KV format is refused before anything runs,
    in one paragraph naming the swept field and why (it printed only pydantic's header line,
    '1 validation error for WorkloadSpec', with neither)."""
    path = tmp_path / "sw.yaml"
    path.write_text("kind: sweep\nname: sw\nmodel: llama-2-7b\nsystem: a100-sxm-80gb\n"
                    "workload: {prompt: 8, generate: 2}\n"
                    "grid: {workload.dtype: [w8a16], workload.kv_dtype: [int8, int4]}\n")
    r = CliRunner().invoke(main, ["sweep", str(path), "--out", str(tmp_path / "out")])
    assert r.exit_code == 2 and "Traceback" not in r.output, r.output
    assert "workload.kv_dtype" in r.output and "weight-only" in r.output and "sw.yaml" in r.output


def test_the_scale_out_table_names_the_workloads_kv_format():
    """scale-out takes workload.kv_dtype; its table's dtype column names it where it is not the
    row dtype's default (each setup may override the dtype). Goes red if the column drops it."""
    from asicsim.studies.scale_out import tables

    row = {"setup": "a", "chips": 1, "dtype": "w8a16", "fits": False, "reason": "r"}
    doc = {"model": "m", "rows": [row, row | {"dtype": "int8"}], "link_sweep": []}
    (table,) = tables(doc, {"workload": {"kv_dtype": "int8"}})
    assert [r[2] for r in table.rows] == ["w8a16, KV int8", "int8"]
    (table,) = tables(doc, {"workload": {"kv_dtype": None}})
    assert [r[2] for r in table.rows] == ["w8a16", "int8"]


def test_the_programs_meta_and_its_trace_name_the_kv_format(tmp_path):
    """The Program's meta (what a Perfetto trace's otherData and a saved program carry) names the
    KV cache's format beside the dtype; it named only the dtype, so a trace of --kv-dtype int8
    read as a bf16 cache. Goes red if the meta drops it."""
    import json

    from asicsim.perfetto import write_chrome_trace

    own, default = _run("a100-sxm-80gb", DType.W8A16, DType.INT8), _run("a100-sxm-80gb", DType.W8A16)
    assert own.program.meta["dtype"] == "w8a16" and own.program.meta["kv_dtype"] == "int8"
    assert default.program.meta["kv_dtype"] == "bf16"
    write_chrome_trace(own.trace, tmp_path / "t.json")
    assert json.loads((tmp_path / "t.json").read_text())["otherData"]["kv_dtype"] == "int8"


def test_a_positional_workload_keeps_its_meaning_with_the_kv_format_last():
    """kv_dtype came after the other fields, so Workload(batch, prompt, generate, dtype, adapters)
    still reads its fifth argument as the adapters (an inserted field broke open_closed)."""
    from dataclasses import fields

    from asicsim.compile.placement import Workload

    names = [f.name for f in fields(Workload)]
    assert names[:5] == ["batch", "prompt", "generate", "dtype", "adapters"] and names[-1] == "kv_dtype"


def test_the_api_names_only_kv_formats_for_a_bad_kv_dtype():
    """predict(kv_dtype=...) lists the KV formats (not int4/w8a16) for an unknown name and says why
    a weight-only one cannot hold a cache."""
    from asicsim.api import predict
    from asicsim.errors import InputError

    with pytest.raises(InputError) as e:
        predict("llama-3.1-8b", "h100-sxm", prompt=8, generate=2, kv_dtype=8)
    assert "bf16, fp16, fp8, int8" in str(e.value) and "w8a16" not in str(e.value)
    with pytest.raises(InputError, match="weight-only"):
        predict("llama-3.1-8b", "h100-sxm", prompt=8, generate=2, kv_dtype="w8a16")
