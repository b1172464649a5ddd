"""Every shipped model runs on a shipped system preset, split over its chips, and the split
conserves the work: each rank's share times the ranks it stands for is the whole model's."""

import numpy as np
import pytest

from asicsim.compile import Workload, check_run, compile_plan, plan_run, step_shapes
from asicsim.engine import simulate
from asicsim.errors import InputError
from asicsim.hardware import load_system
from asicsim.model import build_graph, load_model
from asicsim.model.catalog import catalog

NAMES = [row["name"] for row in catalog()]
SYSTEMS = ("dgx-h200", "dgx-b200")


@pytest.fixture(scope="module")
def systems():
    return {name: load_system(name) for name in SYSTEMS}


@pytest.mark.parametrize("name", NAMES)
def test_every_model_runs_split_over_a_system_preset(name, systems):
    model = load_model(name)
    wl = Workload(batch=2, prompt=8, generate=2)
    fits = []
    for sys_name, system in systems.items():
        try:
            check_run(model, system, wl)
            fits.append(sys_name)
        except InputError as e:
            assert "does not fit" in e.reason
    assert fits, f"{name} fits none of {SYSTEMS}"
    plan = plan_run(model, systems[fits[0]], wl)
    program = compile_plan(plan, model, wl)
    graphs = [build_graph(model, shape, plan.numerics) for _, shape in step_shapes(wl)]
    flops = (program.flops * program.task_copies()).sum()
    assert np.isclose(flops, sum(g.total("flops") for g in graphs), rtol=1e-9)
    assert plan.parallel.tp == 8 and plan.weight_bytes_per_chip < systems[fits[0]].chip.hbm.capacity_gb * 1e9
    assert simulate(program).makespan_ns > 0
