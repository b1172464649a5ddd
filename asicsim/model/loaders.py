"""Loaders for attention-based families beyond Llama: Gemma-2/3, GPT-2 (and GPT-3-shaped configs),
gpt-oss, Mixtral, Qwen3 (dense and MoE), DeepSeek-V2/V3 and Qwen3-Next.

Each follows its reference implementation's config class: defaults where the class has them and
the file may omit the key, errors naming the field otherwise.
"""

from __future__ import annotations

from collections.abc import Callable

from asicsim.model.hf import Config, _heads, loader
from asicsim.model.layers import (MLA, Attention, Block, DenseMLP, FeedForward, GatedDeltaNet, MoE,
                                  ModelSpec)


def build_spec(c: Config, blocks: list[Block], tied_default: bool, vocab: int | None = None,
               model_type: str | None = None, max_context_default: int | None = None) -> ModelSpec:
    """A ModelSpec from ``blocks`` and the fields every config shares."""
    given = c.data.get("max_position_embeddings") is not None
    return ModelSpec(name=c.name, source=c.source, model_type=model_type or c.str("model_type"),
                     hidden=c.int("hidden_size"), vocab=vocab or c.int("vocab_size"), blocks=tuple(blocks),
                     tied_embeddings=c.bool("tie_word_embeddings", tied_default),
                     max_context=c.int("max_position_embeddings") if given else max_context_default)


def layer_types(c: Config, layers: int, allowed: tuple[str, ...], default: Callable[[int], str]) -> list[str]:
    """The config's ``layer_types`` (checked against ``allowed`` and the layer count), or the
    architecture's default pattern, ``default(i)`` for layer ``i``."""
    if c.data.get("layer_types") is not None:
        return c.pattern("layer_types", layers, allowed)
    return [default(i) for i in range(layers)]


def sparse_layers(c: Config, layers: int, experts_field: str) -> list[bool]:
    """Qwen-style MoE placement: every ``decoder_sparse_step``-th layer not in ``mlp_only_layers``."""
    step = c.int("decoder_sparse_step", 1)
    dense = c.indices("mlp_only_layers", layers)
    has_experts = c.int(experts_field, 0, positive=False) > 0
    return [has_experts and i not in dense and (i + 1) % step == 0 for i in range(layers)]


def routed(c: Config, experts_field: str, top_k_field: str, width_field: str, top_k_default: int | None = None,
           experts_default: int | None = None, **options) -> MoE:
    """A MoE read from the config, with ``top_k`` no larger than the expert count."""
    experts, top_k = c.int(experts_field, experts_default), c.int(top_k_field, top_k_default)
    if top_k > experts:
        raise c.error(top_k_field, f"{top_k} is more than the {experts} experts ({experts_field})")
    return MoE(experts, top_k, c.int(width_field), **options)


def _gemma(c: Config, sliding: Callable[[int], bool], qk_norm: bool, tied: bool,
           vocab: int | None = None, model_type: str | None = None,
           max_context_default: int | None = None) -> ModelSpec:
    heads, kv, head_dim = _heads(c, 256)
    layers = c.int("num_hidden_layers")
    window = c.int("sliding_window", 4096)
    kinds = layer_types(c, layers, ("sliding_attention", "full_attention"),
                        lambda i: "sliding_attention" if sliding(i) else "full_attention")
    bias = c.bool("attention_bias", False)
    mlp = DenseMLP(c.int("intermediate_size"), gated=True)
    blocks = [Block(Attention(heads, kv, head_dim, window=window if k == "sliding_attention" else None,
                              qkv_bias=bias, o_bias=bias, qk_norm=qk_norm), mlp, post_norms=True)
              for k in kinds]
    return build_spec(c, blocks, tied, vocab, model_type, max_context_default)


@loader("gemma2")
def load_gemma2(c: Config) -> ModelSpec:
    """Gemma-2: local (sliding) and global attention alternating, local first; four norms per
    layer; GeGLU MLP; tied embeddings (the default when the key is absent)."""
    return _gemma(c, lambda i: i % 2 == 0, qk_norm=False, tied=True, vocab=c.int("vocab_size", 256000))


@loader("gemma3", "gemma3_text")
def load_gemma3(c: Config) -> ModelSpec:
    """Gemma-3: five local layers then one global, QK-norm, four norms per layer, tied embeddings.

    A multimodal config (``gemma3``) describes the language model in ``text_config``; only that
    part is modelled (the vision tower is not). Gemma3TextConfig's defaults fill the keys the
    published file leaves out: vocab 262,208, head_dim 256, window 4096, pattern 6.
    """
    text = c.section("text_config") if c.data.get("model_type") == "gemma3" else c
    pattern = text.int("sliding_window_pattern", 6)
    tied = c.bool("tie_word_embeddings", text.bool("tie_word_embeddings", True))
    return _gemma(text, lambda i: (i + 1) % pattern != 0, qk_norm=True, tied=tied,
                  vocab=text.int("vocab_size", 262208), model_type=c.str("model_type"),
                  max_context_default=131072)


@loader("gpt2")
def load_gpt2(c: Config) -> ModelSpec:
    """GPT-2 and GPT-3-shaped models (Hugging Face's GPT2Config): multi-head attention with biases,
    a plain two-matrix GELU MLP of ``n_inner`` (4 × ``n_embd`` when absent), learned positions,
    the LM head tied to the token embedding."""
    hidden, heads = c.int("n_embd"), c.int("n_head")
    if hidden % heads:
        raise c.error("n_head", f"{heads} does not divide n_embd {hidden}")
    attn = Attention(heads, heads, hidden // heads, qkv_bias=True, o_bias=True)
    inner = c.data.get("n_inner")
    mlp = DenseMLP(4 * hidden if inner is None else c.int("n_inner"), gated=False, bias=True)
    return ModelSpec(name=c.name, source=c.source, model_type="gpt2", hidden=hidden, vocab=c.int("vocab_size"),
                     blocks=tuple(Block(attn, mlp) for _ in range(c.int("n_layer"))),
                     tied_embeddings=c.bool("tie_word_embeddings", True),
                     max_context=c.optional_int("n_positions"))


@loader("gpt_oss")
def load_gpt_oss(c: Config) -> ModelSpec:
    """gpt-oss: sliding and full attention alternating (``layer_types``), learned attention
    sinks, biases on q/k/v/o, the router and the experts; a MoE in every layer."""
    heads, kv, head_dim = _heads(c, 64)
    layers = c.int("num_hidden_layers")
    window = c.int("sliding_window", 128)
    kinds = layer_types(c, layers, ("sliding_attention", "full_attention"),
                        lambda i: "sliding_attention" if i % 2 == 0 else "full_attention")
    bias = c.bool("attention_bias", True)
    moe = routed(c, "num_local_experts", "num_experts_per_tok", "intermediate_size",
                 c.data.get("experts_per_token"), router_bias=True, bias=True)
    blocks = [Block(Attention(heads, kv, head_dim, window=window if k == "sliding_attention" else None,
                              qkv_bias=bias, o_bias=bias, sinks=True), moe) for k in kinds]
    return build_spec(c, blocks, tied_default=False)


@loader("mixtral")
def load_mixtral(c: Config) -> ModelSpec:
    """Mixtral: Llama/Mistral attention (optionally windowed) and a sparse MoE of SwiGLU experts."""
    heads, kv, head_dim = _heads(c)
    attn = Attention(heads, kv, head_dim, window=c.optional_int("sliding_window"))
    moe = routed(c, "num_local_experts", "num_experts_per_tok", "intermediate_size")
    return build_spec(c, [Block(attn, moe)] * c.int("num_hidden_layers"), tied_default=False)


@loader("qwen3", "qwen3_moe")
def load_qwen3(c: Config) -> ModelSpec:
    """Qwen3 dense and MoE: GQA attention with QK-norm; MoE layers per ``decoder_sparse_step``
    and ``mlp_only_layers``. With ``use_sliding_window`` the layers from ``max_window_layers``
    on use a window."""
    heads, kv, head_dim = _heads(c)
    layers = c.int("num_hidden_layers")
    bias = c.bool("attention_bias", False)
    sliding_from = c.int("max_window_layers", layers) if c.bool("use_sliding_window", False) else layers
    window = c.int("sliding_window") if sliding_from < layers else None
    sparse = sparse_layers(c, layers, "num_experts") if c.str("model_type") == "qwen3_moe" else [False] * layers
    dense = DenseMLP(c.int("intermediate_size")) if not all(sparse) else None
    moe = routed(c, "num_experts", "num_experts_per_tok", "moe_intermediate_size") if any(sparse) else None
    blocks = [Block(Attention(heads, kv, head_dim, window=window if i >= sliding_from else None,
                              qkv_bias=bias, o_bias=bias, qk_norm=True), moe if sparse[i] else dense)
              for i in range(layers)]
    return build_spec(c, blocks, tied_default=False)


@loader("deepseek_v2", "deepseek_v3")
def load_deepseek(c: Config) -> ModelSpec:
    """DeepSeek-V2/V3: multi-head latent attention; dense MLPs for the first
    ``first_k_dense_replace`` layers, then (every ``moe_layer_freq``-th layer) routed experts
    plus shared experts. V3's ``noaux_tc`` routing adds a per-expert score-correction bias.
    The multi-token-prediction module (``num_nextn_predict_layers``) is not part of the model."""
    layers = c.int("num_hidden_layers")
    mla = MLA(c.int("num_attention_heads"), c.optional_int("q_lora_rank"), c.int("kv_lora_rank"),
              c.int("qk_nope_head_dim"), c.int("qk_rope_head_dim"), c.int("v_head_dim"))
    experts = c.int("n_routed_experts", 0, positive=False)
    first_dense, freq = c.int("first_k_dense_replace", 0, positive=False), c.int("moe_layer_freq", 1)
    dense = DenseMLP(c.int("intermediate_size"))
    ffn: list[FeedForward] = [dense] * layers
    if experts:
        moe = routed(c, "n_routed_experts", "num_experts_per_tok", "moe_intermediate_size",
                     shared=c.int("n_shared_experts", 0, positive=False),
                     router_bias=c.data.get("topk_method") == "noaux_tc")
        ffn = [moe if i >= first_dense and i % freq == 0 else dense for i in range(layers)]
    return build_spec(c, [Block(mla, f) for f in ffn], tied_default=False)


@loader("qwen3_next")
def load_qwen3_next(c: Config) -> ModelSpec:
    """Qwen3-Next: three gated-DeltaNet layers then one gated full-attention layer (QK-norm,
    partial RoPE), repeating; MoE with one sigmoid-gated shared expert. The checkpoint's MTP
    block is not described by the config and is not modelled."""
    heads, kv, head_dim = _heads(c, 256)
    layers = c.int("num_hidden_layers")
    interval = c.int("full_attention_interval", 4)
    kinds = layer_types(c, layers, ("linear_attention", "full_attention"),
                        lambda i: "full_attention" if (i + 1) % interval == 0 else "linear_attention")
    bias = c.bool("attention_bias", False)
    attn = Attention(heads, kv, head_dim, qkv_bias=bias, o_bias=bias, gated=True, qk_norm=True,
                     rotary_dim=int(head_dim * c.fraction("partial_rotary_factor", 0.25)))
    delta = GatedDeltaNet(c.int("linear_num_key_heads"), c.int("linear_num_value_heads"),
                          c.int("linear_key_head_dim"), c.int("linear_value_head_dim"),
                          c.int("linear_conv_kernel_dim", 4))
    if delta.value_heads % delta.key_heads:
        raise c.error("linear_num_value_heads",
                      f"{delta.value_heads} is not a multiple of linear_num_key_heads {delta.key_heads}")
    sparse = sparse_layers(c, layers, "num_experts")
    shared = c.int("shared_expert_intermediate_size", 0, positive=False)
    moe = (routed(c, "num_experts", "num_experts_per_tok", "moe_intermediate_size", shared=1 if shared else 0,
                  shared_intermediate=shared or None, shared_gate=bool(shared)) if any(sparse) else None)
    dense = DenseMLP(c.int("intermediate_size")) if not all(sparse) else None
    blocks = [Block(attn if k == "full_attention" else delta, moe if sparse[i] else dense)
              for i, k in enumerate(kinds)]
    return build_spec(c, blocks, tied_default=False)
