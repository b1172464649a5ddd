"""The physics the open/closed comparison rests on.

- **HBM chips** stream every weight for every decode step, so at batch 1 a step lies between the
  bandwidth bound ((weight + KV bytes) / peak HBM bandwidth) and 1.5× it. That is tested per HBM
  preset in test_presets.py (``test_decode_step_is_no_faster_than_bandwidth_allows`` and
  ``test_decode_step_is_within_1_5x_of_bandwidth_bound``; b200 is a strict xfail there, with its
  reason) and not repeated here.
- **The hardwired chip** reads its weights in place from ROM: its decode step is set by its arrays
  and by on-chip SRAM traffic (the KV cache), with no HBM bytes at all.
- **Spatial pipelines** (HC1: a stage per layer; Groq: a chip per few layers) run one sequence per
  micro-batch, so aggregate throughput grows with the batch while stages sit idle, then stops at
  the rate of the slowest stage.
"""

from __future__ import annotations

from functools import cache
from itertools import pairwise

import numpy as np
import pytest

from asicsim.api import Result, run
from asicsim.compile import Workload
from asicsim.hardware import load_system
from asicsim.model import load_model

PROMPT, GENERATE = 32, 4
# Batches past which the slowest stage saturates: the HC1's LM-head stage (~4.1 us a token against
# a 75 us step) fills at ~18 sequences, Groq's busiest chip (~16 us against 577 us) at ~35.
SATURATING = {"taalas-hc1": (16, 32), "groq-lpu": (32, 64)}


@cache
def decode(system: str, batch: int) -> Result:
    return run(load_model("llama-3.1-8b"), load_system(system), Workload(batch, PROMPT, GENERATE))


def slowest_block_ns_per_token(r: Result) -> float:
    """The most busy time any one block spends per generated token while decoding: no pipeline can
    deliver tokens faster than its slowest stage handles them."""
    p = r.program
    phases = np.array([s.phase for s in p.steps])
    sel = phases[p.step_of_task()] == "decode"
    busy = np.bincount(p.block[sel], weights=(p.fixed_ns + p.service_ns)[sel], minlength=len(p.blocks))
    return float(busy.max()) / (int((phases == "decode").sum()) * r.workload.batch)


# -- the hardwired chip ------------------------------------------------------------------------------

def test_hardwired_decode_is_set_by_compute_and_sram_with_zero_hbm_bytes():
    m = decode("taalas-hc1", 1).metrics
    assert m.dominant_bound["decode"] in ("compute", "memory")  # memory here can only mean SRAM
    per_step = m.bytes_per_decode_step
    assert per_step.get("hbm_read", 0.0) == 0.0 and per_step.get("hbm_write", 0.0) == 0.0
    assert per_step["rom_read"] > 0 and per_step["sram_read"] > 0
    assert m.utilisation["decode"].get("hbm") is None


# -- spatial pipelines -------------------------------------------------------------------------------

@pytest.mark.parametrize("system", ["taalas-hc1", "groq-lpu"])
def test_pipeline_throughput_rises_with_batch(system):
    """Below saturation each added sequence fills an idle stage: doubling the batch at most doubles
    tokens/s, and here (batches 1-8, far from saturation) very nearly does."""
    tps = [decode(system, b).metrics.tokens_per_s for b in (1, 2, 4, 8)]
    for lo, hi in pairwise(tps):
        assert 1.9 * lo < hi <= 2.0 * lo * (1 + 1e-9)


@pytest.mark.parametrize("system", ["taalas-hc1", "groq-lpu"])
def test_pipeline_throughput_saturates_at_the_slowest_stage(system):
    """Past saturation a doubling gains less than the first did, the aggregate stays below
    batch-1 tokens/s × stages, and it meets the slowest stage's rate (within a few per cent: TPOT
    is timed from the end of the last prefill, and the first sequences' decode overlaps it)."""
    below, past = SATURATING[system]
    one = decode(system, 1).metrics.tokens_per_s
    first_gain = decode(system, 2).metrics.tokens_per_s / one
    big = decode(system, past)
    tps = big.metrics.tokens_per_s
    assert tps / decode(system, below).metrics.tokens_per_s < first_gain
    assert tps <= one * big.program.meta["stages"]
    ceiling = 1e9 / slowest_block_ns_per_token(big)
    assert 0.9 * ceiling <= tps <= 1.05 * ceiling


# -- links between chips: bandwidth and latency both count ------------------------------------------

def test_point_to_point_send_pays_link_rate_and_latency():
    """A send from one GPU to another on dgx-h100 crosses GPU→switch→GPU: a tiny message costs
    the collective start-up and the two links' latency, a large one its size at the link's
    effective rate. Goes red if the
    link is made 10× faster or its latency is dropped."""
    from asicsim.api import collective_ns

    system = load_system("dgx-h100")
    net = system.chip.network
    rate = net.bandwidth_gbps * net.efficiency
    tiny = collective_ns(system, "send", 64, ranks=[0, 1])
    big = 4e9
    large = collective_ns(system, "send", big, ranks=[0, 1])
    assert tiny - net.collective_overhead_ns == pytest.approx(2 * net.latency_ns, rel=0.05)  # start-up apart
    assert large == pytest.approx(big / rate, rel=0.05)
    assert large - tiny == pytest.approx((big - 64) / rate, rel=0.05)
