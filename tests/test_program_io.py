"""A Program is plain data: saved, loaded and re-run, it gives the same trace bit for bit."""

from asicsim.compile import Workload, compile_run
from asicsim.program import Program
from asicsim.engine import simulate


def test_program_round_trips_through_npz(tmp_path, llama8b, hc1):
    program = compile_run(llama8b, hc1, Workload(2, 16, 3))
    path = tmp_path / "program.npz"
    program.save(path)
    loaded = Program.load(path)
    assert loaded.blocks == program.blocks and loaded.ops == program.ops and loaded.steps == program.steps
    assert loaded.meta == program.meta
    assert simulate(loaded).digest() == simulate(program).digest()
