"""The notebook under docs/notebooks runs top to bottom, and its conclusion is what it prints."""

from __future__ import annotations

from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parents[1] / "docs" / "notebooks" / "hbm-vs-hardwired.ipynb"


def test_the_notebook_runs_and_finds_the_gpu_decode_floor(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    texts = ["".join(o.get("text", "") for o in cell.get("outputs", [])) for cell in nb.cells
             if cell.cell_type == "code"]
    assert "taalas-hc1" in texts[0] and "TPOT ms" in texts[1]
    last = texts[-1]
    assert "bound at the floor: compute" in last  # more bandwidth stops helping
    times = float(last.split(" ms per token, ")[1].split("x")[0])
    assert times > 5  # the hardwired chip stays several times ahead
