"""Loaders for recurrent and hybrid families: Mamba/Mamba-2 (``mamba_ssm`` layout),
RecurrentGemma, Jamba and LFM2.

These configs hide sizes in defaults and derived values; each trap is handled where it is read
and named in the loader's docstring.
"""

from __future__ import annotations

import dataclasses
import math

from asicsim.errors import clip
from asicsim.model.hf import Config, _heads, loader
from asicsim.model.layers import RGLRU, Attention, Block, DenseMLP, Mamba, Mamba2, Mixer, ModelSpec, ShortConv
from asicsim.model.loaders import build_spec, layer_types, routed


@loader("mamba_ssm")
def load_mamba_ssm(c: Config) -> ModelSpec:
    """The ``mamba_ssm`` reference config (``d_model``, ``n_layer``; no ``model_type``).

    Every SSM size the file omits takes the reference defaults: Mamba-2 d_state 128, d_conv 4,
    expand 2, headdim 64, ngroups 1; Mamba-1 d_state 16, d_conv 4, expand 2, dt_rank
    ceil(d_model / 16). The vocabulary is padded up to ``pad_vocab_size_multiple``; embeddings
    are tied unless ``tie_embeddings`` is false. ``attn_layer_idx`` layers use MHA from
    ``attn_cfg``; ``d_intermediate > 0`` adds a gated MLP after every mixer.
    """
    hidden, layers = c.int("d_model"), c.int("n_layer")
    ssm = c.section("ssm_cfg") if c.data.get("ssm_cfg") is not None else Config({}, c.source, c.name, "ssm_cfg.")
    version = ssm.str("layer", "Mamba1")
    d_inner = ssm.int("expand", 2) * hidden
    mixer: Mixer
    if version == "Mamba2":
        headdim = ssm.int("headdim", 64)
        if d_inner % headdim:
            raise ssm.error("headdim", f"{headdim} does not divide expand × d_model = {d_inner}")
        mixer = Mamba2(d_inner, ssm.int("d_state", 128), headdim, ssm.int("ngroups", 1), ssm.int("d_conv", 4),
                       conv_bias=ssm.bool("conv_bias", True), proj_bias=ssm.bool("bias", False),
                       norm=ssm.bool("rmsnorm", True))
    elif version == "Mamba1":
        rank = ssm.data.get("dt_rank", "auto")
        dt_rank = math.ceil(hidden / 16) if rank == "auto" else ssm.int("dt_rank")
        mixer = Mamba(d_inner, ssm.int("d_state", 16), ssm.int("d_conv", 4), dt_rank,
                      conv_bias=ssm.bool("conv_bias", True), proj_bias=ssm.bool("bias", False))
    else:
        raise ssm.error("layer", f"is {clip(version)}; expected 'Mamba1' or 'Mamba2'")
    attn_idx = c.indices("attn_layer_idx", layers)
    attn = _mamba_ssm_attention(c, hidden) if attn_idx else None
    width = c.int("d_intermediate", 0, positive=False)
    ffn = DenseMLP(width, gated=True) if width else None
    blocks = [Block(attn if i in attn_idx else mixer, ffn) for i in range(layers)]
    vocab, pad = c.int("vocab_size"), c.int("pad_vocab_size_multiple", 8)
    return ModelSpec(name=c.name, source=c.source, model_type=f"mamba_ssm/{version}", hidden=hidden,
                     vocab=vocab + (-vocab) % pad, blocks=tuple(blocks),
                     tied_embeddings=c.bool("tie_embeddings", True))


def _mamba_ssm_attention(c: Config, hidden: int) -> Attention:
    a = c.section("attn_cfg")
    heads = a.int("num_heads")
    kv = a.int("num_heads_kv", heads)
    if heads % kv:
        raise a.error("num_heads_kv", f"{kv} does not divide num_heads {heads}")
    if "head_dim" not in a.data and hidden % heads:
        raise a.error("num_heads", f"{heads} does not divide d_model {hidden}")
    return Attention(heads, kv, a.int("head_dim", hidden // heads), qkv_bias=a.bool("qkv_proj_bias", True),
                     o_bias=a.bool("out_proj_bias", True))


@loader("recurrent_gemma")
def load_recurrent_gemma(c: Config) -> ModelSpec:
    """RecurrentGemma: layers cycle through ``block_types`` (recurrent, recurrent, attention);
    local MQA attention over ``attention_window_size`` with a biased output projection; GeGLU
    MLP with biases whose width is ``intermediate_size // 2`` (the field is twice the real
    width); embeddings always tied."""
    heads, kv, head_dim = _heads(c)
    layers = c.int("num_hidden_layers")
    field = "block_types" if "block_types" in c.data else "_block_types"
    cycle = c.list(field, ["recurrent", "recurrent", "attention"])
    if not cycle or any(t not in ("recurrent", "attention") for t in cycle):
        raise c.error(field, f"must list 'recurrent' / 'attention' entries, got {clip(cycle)}")
    lru = c.int("lru_width", c.int("hidden_size"))
    if lru % heads:
        raise c.error("lru_width", f"{lru} is not divisible by num_attention_heads {heads}")
    recurrent = RGLRU(lru, heads, c.int("conv1d_width", 4))
    attn = Attention(heads, kv, head_dim, window=c.int("attention_window_size", 2048),
                     qkv_bias=c.bool("attention_bias", False), o_bias=True,
                     rotary_dim=int(head_dim * c.fraction("partial_rotary_factor", 0.5)))
    width = c.int("intermediate_size")
    if width % 2:
        raise c.error("intermediate_size", f"must be even (each MLP branch is half of it), got {width}")
    mlp = DenseMLP(width // 2, gated=True, bias=True)
    blocks = [Block(attn if cycle[i % len(cycle)] == "attention" else recurrent, mlp) for i in range(layers)]
    spec = build_spec(c, blocks, tied_default=True, vocab=c.int("vocab_size", 256000))
    return dataclasses.replace(spec, tied_embeddings=True)  # the HF class has no separate head


def _period(c: Config, period_field: str, offset_field: str, period: int, offset: int) -> tuple[int, int]:
    p = c.int(period_field, period)
    o = c.int(offset_field, offset, positive=False)
    if not 0 <= o < p:
        raise c.error(offset_field, f"must be in [0, {period_field} = {p}), got {o}")
    return p, o


@loader("jamba")
def load_jamba(c: Config) -> ModelSpec:
    """Jamba: layer ``i`` is attention when ``i % attn_layer_period == attn_layer_offset``, else
    Mamba-1 (with dt/B/C RMSNorms); the FFN is a MoE when ``i % expert_layer_period ==
    expert_layer_offset``, else a dense SwiGLU MLP. ``mamba_dt_rank: "auto"`` is
    ceil(hidden / 16)."""
    heads, kv, head_dim = _heads(c)
    hidden, layers = c.int("hidden_size"), c.int("num_hidden_layers")
    attn_p, attn_o = _period(c, "attn_layer_period", "attn_layer_offset", 8, 4)
    exp_p, exp_o = _period(c, "expert_layer_period", "expert_layer_offset", 2, 1)
    rank = c.data.get("mamba_dt_rank", "auto")
    mamba = Mamba(c.int("mamba_expand", 2) * hidden, c.int("mamba_d_state", 16), c.int("mamba_d_conv", 4),
                  math.ceil(hidden / 16) if rank == "auto" else c.int("mamba_dt_rank"),
                  conv_bias=c.bool("mamba_conv_bias", True), proj_bias=c.bool("mamba_proj_bias", False),
                  inner_norms=c.bool("mamba_inner_layernorms", True))
    attn = Attention(heads, kv, head_dim, window=c.optional_int("sliding_window"))
    dense = DenseMLP(c.int("intermediate_size"))
    moe = (routed(c, "num_experts", "num_experts_per_tok", "intermediate_size", 2, 16)
           if c.int("num_experts", 16) > 1 else dense)
    blocks = [Block(attn if i % attn_p == attn_o else mamba, moe if i % exp_p == exp_o else dense)
              for i in range(layers)]
    return build_spec(c, blocks, tied_default=False)


@loader("lfm2")
def load_lfm2(c: Config) -> ModelSpec:
    """LFM2: gated short-conv layers with full GQA attention (QK-norm) at ``full_attn_idxs`` (or
    per ``layer_types``). The FFN width ``block_ff_dim`` (alias ``intermediate_size``) is
    auto-adjusted when ``block_auto_adjust_ff_dim``: x2/3, times ``block_ffn_dim_multiplier``,
    rounded up to ``block_multiple_of`` (12288 → 8192). Embeddings are tied by default."""
    heads, kv, head_dim = _heads(c)
    hidden, layers = c.int("hidden_size"), c.int("num_hidden_layers")
    if c.data.get("layer_types") is None:
        full = c.indices("full_attn_idxs", layers)
        kinds = ["full_attention" if i in full else "conv" for i in range(layers)]
    else:
        kinds = layer_types(c, layers, ("full_attention", "conv"), str)
    attn = Attention(heads, kv, head_dim, qk_norm=True)
    conv = ShortConv(hidden, c.int("conv_L_cache", 3), bias=c.bool("conv_bias", False))
    field = "block_ff_dim" if "block_ff_dim" in c.data else "intermediate_size"
    width = c.int(field)
    if c.bool("block_auto_adjust_ff_dim", True):
        width = int(2 * width / 3)
        if c.data.get("block_ffn_dim_multiplier") is not None:
            width = c.size("block_ffn_dim_multiplier", c.float("block_ffn_dim_multiplier") * width)
        multiple = c.int("block_multiple_of", 256)
        width = multiple * ((width + multiple - 1) // multiple)
    mlp = DenseMLP(width)
    blocks = [Block(attn if k == "full_attention" else conv, mlp) for k in kinds]
    return build_spec(c, blocks, tied_default=True)
