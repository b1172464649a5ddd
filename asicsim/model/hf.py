"""Read a Hugging Face ``config.json`` into a :class:`ModelSpec`.

Loaders are registered per ``model_type``; each reads only the fields its architecture defines
and checks them, so a missing or contradictory field fails here, naming the file and field.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from asicsim.errors import InputError, clip
from asicsim.safeio import exists, is_file, load_json
from asicsim.shipped import MODELS_DIR
from asicsim.model.layers import Attention, Block, DenseMLP, ModelSpec

MAX_LAYERS = 10_000      # far above any model's layer count (Llama-3.1-405B has 126)
MAX_INT = 2**31          # sizes, vocabularies, context lengths

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
    """A config dict that reports a missing or bad field with the file's name.

    ``prefix`` is the dotted path of a nested section (``text_config.``) so errors name the
    field as it sits in the file.
    """

    def __init__(self, data: dict[str, Any], source: str, name: str, prefix: str = ""):
        self.data, self.source, self.name, self.prefix = data, source, name, prefix

    def error(self, field: str, reason: str) -> InputError:
        return InputError(self.source, self.prefix + field, reason)

    def section(self, field: str) -> Config:
        """A nested object, e.g. ``text_config``, read with the same file name."""
        value = self.data.get(field)
        if not isinstance(value, dict):
            raise self.error(field, f"must be an object, got {clip(value)}")
        return Config(value, self.source, self.name, f"{self.prefix}{field}.")

    def float(self, field: str, default: float | None = None) -> float:
        """A finite, positive number (every float a config gives here is a factor or a size)."""
        value = self.data.get(field, default)
        if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.error(field, f"must be a number, got {clip(value)}")
        if not math.isfinite(value) or value <= 0:
            raise self.error(field, f"must be a finite number above 0, got {clip(value)}")
        return float(value)

    def fraction(self, field: str, default: float) -> float:
        """A share: a number above 0 and at most 1."""
        value = self.float(field, default)
        if value > 1:
            raise self.error(field, f"is a share, at most 1; got {clip(value)}")
        return value

    def size(self, field: str, value: float) -> int:
        """A size derived from ``field`` (a width scaled by it): a positive integer within MAX_INT."""
        if not 1 <= value <= MAX_INT:
            raise self.error(field, f"makes a size of {value:,.0f}; sizes are 1 to {MAX_INT:,}")
        return int(value)

    def str(self, field: str, default: str | None = None) -> str:
        value = self.data.get(field, default)
        if not isinstance(value, str):
            raise self.error(field, f"must be a string, got {clip(value)}")
        return value

    def list(self, field: str, default: list | None = None) -> list:
        value = self.data.get(field, default)
        if not isinstance(value, list):
            raise self.error(field, f"must be a list, got {clip(value)}")
        return value

    def pattern(self, field: str, layers: int, allowed: tuple[str, ...]) -> list[str]:
        """A per-layer type list (``layer_types``): exactly ``layers`` entries from ``allowed``."""
        value = self.list(field)
        if len(value) != layers:
            raise self.error(field, f"has {len(value)} entries but num_hidden_layers is {layers}")
        for i, kind in enumerate(value):
            if kind not in allowed:
                raise self.error(f"{field}[{i}]", f"is {clip(kind)}; expected one of {', '.join(allowed)}")
        return value

    def indices(self, field: str, layers: int) -> set[int]:
        """A list of distinct layer indices, each in ``range(layers)``."""
        value = self.list(field, [])
        for i in value:
            if isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < layers:
                raise self.error(field, f"entry {clip(i)} is not a layer index below {layers}")
        if len(set(value)) != len(value):
            raise self.error(field, "lists a layer twice")
        return set(value)

    def int(self, field: str, default: int | None = None, positive: bool = True) -> int:
        value = self.data.get(field, default)
        if value is None:
            raise self.error(field, "is missing and has no default for this model type")
        if isinstance(value, bool) or not isinstance(value, int) or value < (1 if positive else 0):
            kind = "a positive" if positive else "a non-negative"
            raise self.error(field, f"must be {kind} integer, got {clip(value)}")
        limit = MAX_LAYERS if "layer" in field else MAX_INT
        if value > limit:
            raise self.error(field, f"is {value:,}; at most {limit:,} is accepted")
        return value

    def optional_int(self, field: str) -> int | None:
        return None if self.data.get(field) is None else self.int(field)

    def bool(self, field: str, default: bool) -> bool:
        value = self.data.get(field, default)
        if not isinstance(value, bool):
            raise self.error(field, f"must be true or false, got {clip(value)}")
        return value


def resolve_model_path(name_or_path: str) -> Path:
    """A path to an existing file, or a name resolved to ``models/NAME.json``."""
    p = Path(name_or_path)
    if p.suffix == ".json" or exists(p):
        if not is_file(p):
            raise InputError(str(p), None, "no such model file")
        return p
    candidate = MODELS_DIR / f"{name_or_path}.json"
    if not is_file(candidate):
        known = ", ".join(sorted(q.stem for q in MODELS_DIR.glob("*.json"))) or "none"
        raise InputError("--model", None, f"unknown model '{name_or_path}'; shipped models are: {known}")
    return candidate


def load_model(name_or_path: str, changes: dict[str, Any] | None = None) -> ModelSpec:
    """Load a shipped model by name or a user's ``config.json`` by path; ``changes`` sets config
    fields first (dotted paths reach into nested objects: ``rope_scaling.factor``), each one a
    field the config already has."""
    path = resolve_model_path(name_or_path)
    data = load_json(path)
    if not isinstance(data, dict):
        raise InputError(str(path), None, "must hold a JSON object")
    for key, value in (changes or {}).items():
        _set(data, key, value, str(path))
    model_type = data.get("model_type", _sniff_model_type(data))
    if not isinstance(model_type, str) or model_type not in LOADERS:
        known = ", ".join(sorted(LOADERS))
        raise InputError(str(path), "model_type",
                         f"unsupported model_type {clip(model_type)}; supported: {known}")
    return LOADERS[model_type](Config(data, str(path), path.stem))


def _set(data: dict[str, Any], key: str, value: Any, source: str) -> None:
    """Set config field ``key`` (dotted for nested objects), which must exist."""
    import difflib

    *parents, last = key.split(".")
    here = data
    for i, part in enumerate(parents):
        here = here.get(part) if isinstance(here, dict) else None
        if not isinstance(here, dict):
            raise InputError(source, key, f"'{'.'.join(parents[:i + 1])}' is not an object in this config")
    if last not in here:
        near = difflib.get_close_matches(last, list(here), n=3, cutoff=0.6)
        hint = f"; did you mean {', '.join(near)}?" if near else ""
        raise InputError(source, key, f"this config has no field '{last}'{hint}")
    here[last] = value


def _sniff_model_type(data: dict[str, Any]) -> str | None:
    """Configs without ``model_type``: the ``mamba_ssm`` reference layout (d_model, n_layer)."""
    return "mamba_ssm" if {"d_model", "n_layer", "ssm_cfg"} & data.keys() else None


def _heads(c: Config, head_dim_default: int | None = None) -> tuple[int, int, int]:
    """(query heads, KV heads, head width); the width defaults to ``head_dim_default``, else to
    hidden_size / num_attention_heads, which must then divide evenly."""
    hidden = c.int("hidden_size")
    heads = c.int("num_attention_heads")
    kv = c.int("num_key_value_heads", default=heads)
    if heads % kv:
        raise c.error("num_key_value_heads", f"{kv} does not divide num_attention_heads {heads}")
    head_dim = c.data.get("head_dim", head_dim_default)
    if head_dim is None:
        if hidden % heads:
            raise c.error("num_attention_heads", f"{heads} does not divide hidden_size {hidden}")
        head_dim = hidden // heads
    elif not isinstance(head_dim, int) or head_dim <= 0:
        raise c.error("head_dim", f"must be a positive integer, got {clip(head_dim)}")
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


# The other architectures register themselves on import (kept in their own modules for size).
from asicsim.model import loaders, loaders_hybrid  # noqa: E402,F401
