"""Choosing the mapping per run: a spatial wafer run temporally gangs all its cores on each layer;
chips that cannot be remapped say why."""

import pytest

from asicsim.api import predict
from asicsim.program import Level
from asicsim.errors import InputError


def test_wafer_runs_temporally_with_all_cores_on_each_layer():
    spatial = predict("llama-3.1-8b", "cerebras-wse3", prompt=64, generate=3)
    temporal = predict("llama-3.1-8b", "cerebras-wse3", prompt=64, generate=3, mapping="temporal")
    assert spatial.plan.stages == 33 and temporal.plan.stages == 1
    assert temporal.summary()["mapping"] == "temporal"
    # the same work and the same bytes, from the same SRAM
    for p in (spatial.program, temporal.program):
        assert p.nbytes[p.level == Level.HBM_READ].sum() == 0
    assert temporal.program.flops.sum() == pytest.approx(spatial.program.flops.sum(), rel=1e-12)
    # one sequence through 33 stages uses one stage at a time: ganging all cores on each layer
    # gives each op 33x the cores, but every op now crosses the whole wafer's mesh (a patch
    # sqrt(33) ~ 5.7x wider, cost.mesh_ns), so the prompt is several times faster, not 33x
    ratio = spatial.metrics.ttft_ms / temporal.metrics.ttft_ms
    assert 3 < ratio < 15


@pytest.mark.parametrize("system, mapping, says", [
    ("h100-sxm", "spatial", "one set of arrays"),
    ("taalas-hc1", "temporal", "can only run spatially"),
])
def test_impossible_mappings_are_refused(system, mapping, says):
    with pytest.raises(InputError, match=says) as err:
        predict("llama-3.1-8b", system, prompt=16, generate=2, mapping=mapping)
    assert err.value.field == "mapping"


def test_own_mapping_changes_nothing():
    a = predict("llama-3.1-8b", "h100-sxm", prompt=16, generate=3)
    b = predict("llama-3.1-8b", "h100-sxm", prompt=16, generate=3, mapping="temporal")
    assert a.trace.digest() == b.trace.digest()


def test_figures_read_the_chip_as_run():
    """The plan carries the remapped chip: a temporal wafer's roofline is drawn under all its
    cores' peak, not one spatial stage's."""
    from asicsim.plotdata import roofs
    from asicsim.plots import roofline_figure

    r = predict("llama-3.1-8b", "cerebras-wse3", prompt=16, generate=2, mapping="temporal")
    asked, ran = roofs(r.system.chip, r.workload.dtype), roofs(r.plan.chip, r.workload.dtype)
    assert ran.compute[0][1] == pytest.approx(33 * asked.compute[0][1])
    labels = [t.get_text() for t in roofline_figure(r).axes[0].get_legend().get_texts()]
    assert any(f"{ran.compute[0][1] / 1e12:,.0f} TFLOP/s" in label for label in labels)
    assert r.plan.to_dict()["mapping"] == "temporal"


def test_a_pipeline_with_more_stages_than_sequences_says_how_few_stages_can_work():
    """On a spatial pipeline a stage holds one sequence at a time, so with 4 sequences over the
    HC1's stages the matmul arrays cannot be busy more than 4/stages of the decode window, however
    compute-bound each stage is while it works; the table and headline say so."""
    from asicsim.headlines import headlines, pipeline_fill
    from asicsim.report_text import summary_rows

    r = predict("llama-3.1-8b", "taalas-hc1", batch=4, prompt=64, generate=4)
    s = r.summary()
    busy, stages = pipeline_fill(s)
    assert (busy, stages) == (4, r.plan.stages) and stages > 4
    assert r.metrics.utilisation["decode"]["matmul"] <= busy / stages
    rows = dict(summary_rows(s))
    assert rows["decode stages busy, most"] == f"4 of {stages} ({4 / stages:.0%})"
    assert rows["decode bound (op time)"].startswith(r.metrics.dominant_bound["decode"])
    said = " ".join(headlines({"scenario": {"kind": "compare"}, "results": [s]}))
    assert f"4 sequences in flight over {stages} pipeline stages" in said
    # a temporal chip has no such row
    assert pipeline_fill(predict("llama-3.1-8b", "h100-sxm", prompt=64, generate=2).summary()) is None
