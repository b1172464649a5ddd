"""Choosing the mapping per run: a spatial wafer run temporally gangs all its cores on each layer;
chips that cannot be remapped say why."""

import pytest

from asicsim.api import predict
from asicsim.compile.program import Level
from asicsim.errors import InputError


def test_wafer_runs_temporally_with_all_cores_on_each_layer():
    spatial = predict("llama-3.1-8b", "cerebras-wse3", prompt=64, generate=3)
    temporal = predict("llama-3.1-8b", "cerebras-wse3", prompt=64, generate=3, mapping="temporal")
    assert spatial.program.meta["stages"] == 33 and temporal.program.meta["stages"] == 1
    assert temporal.summary()["mapping"] == "temporal"
    # the same work and the same bytes, from the same SRAM
    for p in (spatial.program, temporal.program):
        assert p.nbytes[p.level == Level.HBM_READ].sum() == 0
    assert temporal.program.flops.sum() == pytest.approx(spatial.program.flops.sum(), rel=1e-12)
    # one sequence through 33 stages uses one stage at a time: ganging all cores on each layer
    # makes the prompt about 33x faster
    ratio = spatial.metrics.ttft_ms / temporal.metrics.ttft_ms
    assert 15 < ratio < 40


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
