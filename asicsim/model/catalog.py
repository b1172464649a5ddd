"""The shipped model zoo at a glance: one summary row per ``models/*.json``."""

from __future__ import annotations

from typing import Any

from asicsim.model.hf import MODELS_DIR, load_model
from asicsim.model.ops import Numerics

BF16 = Numerics(weight_bytes=2.0, kv_bytes=2.0, act_bytes=2.0)


def summary(name: str) -> dict[str, Any]:
    """Size, layer mix and per-sequence memory of one model (bf16 KV and state)."""
    model = load_model(name)
    return {
        "name": name,
        "params": model.params(),
        "active_params": model.active_params(),
        "layer_mix": model.layer_mix(),
        # every layer's KV for one more token, windows not applied
        "kv_bytes_per_token": model.kv_bytes_per_token(BF16),
        "state_bytes_per_sequence": model.state_bytes(1, BF16),
    }


def catalog() -> list[dict[str, Any]]:
    """One :func:`summary` per shipped model, sorted by name (the file stem)."""
    return [summary(path.stem) for path in sorted(MODELS_DIR.glob("*.json"), key=lambda p: p.stem)]
