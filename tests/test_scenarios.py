"""Every shipped scenario file reads and validates (its kind's schema, its models and systems)."""

from __future__ import annotations

from pathlib import Path

import pytest

from asicsim.scenario import load_scenario

SCENARIOS = sorted((Path(__file__).resolve().parents[1] / "scenarios").glob("*.yaml"))


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_a_shipped_scenario_validates(path):
    spec = load_scenario(path)
    assert spec.name and spec.kind
