"""Shared fixtures: the shipped Llama, the two quickstart chips, and small random worlds."""

from __future__ import annotations

import numpy as np
import pytest

from asicsim.hardware import load_system
from asicsim.model import load_model


@pytest.fixture(scope="session")
def llama8b():
    return load_model("llama-3.1-8b")


@pytest.fixture(scope="session")
def h100():
    return load_system("h100-sxm")


@pytest.fixture(scope="session")
def hc1():
    return load_system("taalas-hc1")


def step_ends(trace) -> np.ndarray:
    ends = np.zeros(len(trace.program.steps))
    np.maximum.at(ends, trace.program.step_of_task(), trace.end_ns)
    return ends


@pytest.fixture(scope="session", autouse=True)
def _environment_left_as_found():
    """The session must not install into, or re-point, the environment running it (the docs
    test runs install commands in a throwaway venv): compared before and after every session."""
    from environment import changes, snapshot

    before = snapshot()
    yield
    found = changes(before, snapshot())
    assert not found, "the test session changed the environment running it:\n" + "\n".join(found)
