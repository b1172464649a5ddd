"""Spreading a model over several SRAM-only chips (Groq-like), and what is refused."""

import pytest

from asicsim.api import predict, run
from asicsim.compile import Workload
from asicsim.compile.placement import numerics_for
from asicsim.errors import InputError
from asicsim.hardware import SystemSpec, build_system, load_chip


def test_groq_takes_as_many_chips_as_the_weights_need(llama8b):
    r = predict("llama-3.1-8b", "groq-lpu", prompt=32, generate=3, dtype="int8")
    chips = r.program.meta["chips"]
    sram = load_chip("groq-lpu").sram_for("weights").capacity_bytes
    num = numerics_for(r.workload, r.system.chip)
    need = llama8b.params() * num.weight_bytes + llama8b.kv_bytes(1, 35, num)
    assert chips == -(-need // sram) > 1
    assert r.metrics.bytes_per_decode_step["hbm_read"] == 0
    # One layer per chip and the head on the next: each token goes round a cycle of that many
    # chips (the head hands the token back to chip 0), one bf16 hidden vector per hop.
    used = min(chips, llama8b.n_layers + 1)
    assert r.metrics.bytes_per_decode_step["link"] == used * llama8b.hidden * 2


def test_bf16_needs_twice_the_chips_of_int8():
    int8 = predict("llama-3.1-8b", "groq-lpu", prompt=16, generate=2, dtype="int8").program.meta["chips"]
    bf16 = predict("llama-3.1-8b", "groq-lpu", prompt=16, generate=2, dtype="bf16").program.meta["chips"]
    assert bf16 == pytest.approx(2 * int8, abs=1)


def test_temporal_chips_are_not_split_yet(llama8b):
    two = build_system(SystemSpec(name="2xh100", chip="h100-sxm", count=2,
                                  interconnect={"a": "chip", "b": "chip", "bandwidth_gbps": 450}))
    with pytest.raises(InputError, match="not implemented yet"):
        run(llama8b, two, Workload(1, 16, 2))
