"""Every shipped model compiles and runs (or is refused for memory), conserving bytes and FLOPs:
recurrent state and MoE expert traffic reach HBM exactly as the op graphs say."""

import numpy as np
import pytest

from asicsim.compile import Workload, compile_run, step_shapes
from asicsim.compile.placement import numerics_for
from asicsim.program import Level
from asicsim.engine import simulate
from asicsim.errors import InputError
from asicsim.hardware import load_system
from asicsim.model import build_graph, load_model
from asicsim.model.catalog import catalog

NAMES = [row["name"] for row in catalog()]
FITS_ON_H200 = {"llama-3.1-8b", "mamba2-2.7b", "recurrentgemma-9b", "lfm2-1.2b", "gpt-oss-20b", "mixtral-8x7b"}


@pytest.fixture(scope="module")
def h200():
    return load_system("h200")


@pytest.mark.parametrize("name", NAMES)
def test_model_runs_or_is_refused_cleanly(name, h200):
    model = load_model(name)
    wl = Workload(batch=2, prompt=24, generate=3)
    try:
        program = compile_run(model, h200, wl)
    except InputError as e:
        assert name not in FITS_ON_H200
        assert "does not fit" in e.reason and "h200" in e.source
        return
    num = numerics_for(wl, h200.chip)
    graphs = [build_graph(model, shape, num) for _, shape in step_shapes(wl)]
    by_level = np.bincount(program.level, weights=program.nbytes, minlength=len(Level))
    # MoE layers move the expected union of experts: fractional bytes, so compare to rounding
    assert np.isclose(by_level[Level.HBM_READ],
                      sum(g.total("weight_bytes") + g.total("kv_read_bytes") for g in graphs), rtol=1e-12)
    assert np.isclose(by_level[Level.HBM_WRITE], sum(g.total("kv_write_bytes") for g in graphs), rtol=1e-12)
    assert np.isclose(program.flops.sum(), sum(g.total("flops") for g in graphs), rtol=1e-12)
    trace = simulate(program)
    assert trace.makespan_ns > 0


def test_fits_list_is_honest(h200):
    for name in FITS_ON_H200:
        compile_run(load_model(name), h200, Workload(batch=2, prompt=24, generate=3))
