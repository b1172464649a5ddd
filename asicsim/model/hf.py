"""Read a Hugging Face ``config.json`` into a :class:`ModelSpec`.

Loaders are registered per ``model_type``; each reads only the fields its architecture defines
and checks them, so a missing or contradictory field fails here, naming the file and field.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from asicsim.errors import InputError
from asicsim.model.layers import Attention, Block, DenseMLP, ModelSpec

MODELS_DIR = Path(__file__).resolve().parents[2] / "models"

Loader = Callable[["Config"], ModelSpec]
LOADERS: dict[str, Loader] = {}


def loader(*model_types: str) -> Callable[[Loader], Loader]:
    """Register a loader for one or more ``model_type`` values."""
    def register(fn: Loader) -> Loader:
        for t in model_types:
            LOADERS[t] = fn
        return fn
    return register


class Config:
    """A config dict that reports a missing or bad field with the file's name."""

    def __init__(self, data: dict[str, Any], source: str, name: str):
        self.data, self.source, self.name = data, source, name

    def error(self, field: str, reason: str) -> InputError:
        return InputError(self.source, field, reason)

    def int(self, field: str, default: int | None = None, positive: bool = True) -> int:
        value = self.data.get(field, default)
        if value is None:
            raise self.error(field, "is missing and has no default for this model type")
        if isinstance(value, bool) or not isinstance(value, int) or (positive and value <= 0):
            raise self.error(field, f"must be a positive integer, got {value!r}")
        return value

    def optional_int(self, field: str) -> int | None:
        return None if self.data.get(field) is None else self.int(field)

    def bool(self, field: str, default: bool) -> bool:
        value = self.data.get(field, default)
        if not isinstance(value, bool):
            raise self.error(field, f"must be true or false, got {value!r}")
        return value


def resolve_model_path(name_or_path: str) -> Path:
    """A path to an existing file, or a name resolved to ``models/NAME.json``."""
    p = Path(name_or_path)
    if p.suffix == ".json" or p.exists():
        if not p.is_file():
            raise InputError(str(p), None, "no such model file")
        return p
    candidate = MODELS_DIR / f"{name_or_path}.json"
    if not candidate.is_file():
        known = ", ".join(sorted(q.stem for q in MODELS_DIR.glob("*.json"))) or "none"
        raise InputError("--model", None, f"unknown model '{name_or_path}'; shipped models are: {known}")
    return candidate


def load_model(name_or_path: str) -> ModelSpec:
    """Load a shipped model by name or a user's ``config.json`` by path."""
    path = resolve_model_path(name_or_path)
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise InputError(str(path), None, f"is not valid JSON (line {e.lineno}: {e.msg})") from None
    if not isinstance(data, dict):
        raise InputError(str(path), None, "must hold a JSON object")
    model_type = data.get("model_type")
    if model_type not in LOADERS:
        known = ", ".join(sorted(LOADERS))
        raise InputError(str(path), "model_type",
                         f"unsupported model_type {model_type!r}; supported: {known}")
    return LOADERS[model_type](Config(data, str(path), path.stem))


def _heads(c: Config) -> tuple[int, int, int]:
    hidden = c.int("hidden_size")
    heads = c.int("num_attention_heads")
    kv = c.int("num_key_value_heads", default=heads)
    if heads % kv:
        raise c.error("num_key_value_heads", f"{kv} does not divide num_attention_heads {heads}")
    head_dim = c.data.get("head_dim")
    if head_dim is None:
        if hidden % heads:
            raise c.error("num_attention_heads", f"{heads} does not divide hidden_size {hidden}")
        head_dim = hidden // heads
    elif not isinstance(head_dim, int) or head_dim <= 0:
        raise c.error("head_dim", f"must be a positive integer, got {head_dim!r}")
    return heads, kv, head_dim


@loader("llama", "mistral")
def load_llama(c: Config) -> ModelSpec:
    """Llama 1/2/3 and Mistral: GQA attention (optionally windowed) and a SwiGLU MLP per layer."""
    hidden = c.int("hidden_size")
    heads, kv, head_dim = _heads(c)
    window = c.optional_int("sliding_window") if c.data.get("model_type") == "mistral" else None
    attn = Attention(heads, kv, head_dim, window=window,
                     qkv_bias=c.bool("attention_bias", False), o_bias=c.bool("attention_bias", False))
    mlp = DenseMLP(c.int("intermediate_size"), gated=True, bias=c.bool("mlp_bias", False))
    layers = c.int("num_hidden_layers")
    return ModelSpec(name=c.name, source=c.source, model_type=c.data["model_type"], hidden=hidden,
                     vocab=c.int("vocab_size"), blocks=tuple(Block(attn, mlp) for _ in range(layers)),
                     tied_embeddings=c.bool("tie_word_embeddings", False),
                     max_context=c.optional_int("max_position_embeddings"))
