"""A model's shape as the memory planner needs it, read from its Hugging Face `config.json`.

Weights, KV-cache bytes per token and the activation peak all follow from a dozen config.json keys,
so the planner reads exactly those, from the shipped catalog (`catalog/models.py`, facts copied
from published configs) or from a user's own file. Architectures whose memory the
planner cannot model (linear-attention / state-space hybrids keep a per-request recurrent state,
not a per-token KV cache) are refused with a reason instead of being estimated wrongly.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..catalog.models import catalog_entry

# Layer kinds in `layer_types` that carry a recurrent state instead of a KV cache.
_STATEFUL_LAYER_KINDS = ("linear_attention", "mamba", "conv", "recurrent", "gated_delta")
_STATEFUL_MODEL_TYPES = ("qwen3_next", "qwen3_5", "qwen3_5_moe", "mamba", "mamba2", "jamba", "falcon_h1", "nemotron_h", "minimax_text_01")


# Keys a config.json may leave out because transformers' config class supplies them
# (transformers' Gemma2Config / Gemma3TextConfig defaults; Gemma checkpoints rely on them).
_CONFIG_CLASS_DEFAULTS: dict[str, dict[str, Any]] = {
    "gemma2": {"tie_word_embeddings": True},
    "gemma3_text": {
        "num_attention_heads": 8,
        "num_key_value_heads": 4,
        "head_dim": 256,
        "vocab_size": 262208,
        "max_position_embeddings": 131072,
        "sliding_window": 4096,
        "sliding_window_pattern": 6,
        "tie_word_embeddings": True,
    },
}


class ArchitectureError(ValueError):
    """A config.json the planner cannot use, with the reason."""


@dataclass(frozen=True)
class MoeShape:
    experts: int
    experts_per_token: int
    expert_intermediate: int
    shared_intermediate: int  # summed over shared experts; 0 when there are none
    sparse_layers: int  # decoder layers whose MLP is the expert block; the rest are dense


@dataclass(frozen=True)
class MlaShape:
    """DeepSeek-style multi-head latent attention: the cache holds one compressed latent per token."""

    kv_lora_rank: int
    q_lora_rank: int | None
    qk_rope_head_dim: int
    qk_nope_head_dim: int
    v_head_dim: int


@dataclass(frozen=True)
class ModelArchitecture:
    name: str
    model_type: str
    layers: int
    hidden: int
    heads: int
    kv_heads: int
    head_dim: int
    intermediate: int  # dense MLP width (the first-k dense layers of an MoE model use it too)
    vocab: int
    tied_embeddings: bool
    torch_dtype: str
    max_position_embeddings: int
    layer_windows: tuple[int | None, ...]  # per decoder layer: sliding-window size, None = full attention
    moe: MoeShape | None
    mla: MlaShape | None
    qkv_bias: bool
    expert_bias: bool
    quantization_config: dict[str, Any] | None
    vision_params: int
    source: str

    # --- parameter counts (what the checkpoint stores, before vLLM pads or fuses anything) ---
    @property
    def embedding_params(self) -> int:
        return self.vocab * self.hidden

    @property
    def lm_head_params(self) -> int:
        return 0 if self.tied_embeddings else self.vocab * self.hidden

    @property
    def attention_params_per_layer(self) -> int:
        h = self.hidden
        if self.mla:
            m = self.mla
            q_dim = self.heads * (m.qk_nope_head_dim + m.qk_rope_head_dim)
            q = h * q_dim if m.q_lora_rank is None else h * m.q_lora_rank + m.q_lora_rank * q_dim
            kv = h * (m.kv_lora_rank + m.qk_rope_head_dim) + m.kv_lora_rank * self.heads * (m.qk_nope_head_dim + m.v_head_dim)
            return q + kv + self.heads * m.v_head_dim * h
        q, kv = self.heads * self.head_dim, self.kv_heads * self.head_dim
        bias = (q + 2 * kv) if self.qkv_bias else 0
        return h * q + 2 * h * kv + q * h + bias

    @property
    def dense_mlp_params(self) -> int:
        return 3 * self.hidden * self.intermediate  # gate, up, down

    @property
    def expert_params_per_layer(self) -> int:
        """The routed experts of one sparse layer: the part MoE quantization (mxfp4, W4A16) shrinks."""
        if not self.moe:
            return 0
        per_expert = 3 * self.hidden * self.moe.expert_intermediate
        if self.expert_bias:
            per_expert += 3 * self.moe.expert_intermediate + self.hidden
        return self.moe.experts * per_expert

    @property
    def sparse_mlp_extra_params(self) -> int:
        """Router and shared experts of one sparse layer."""
        if not self.moe:
            return 0
        return self.hidden * self.moe.experts + 3 * self.hidden * self.moe.shared_intermediate

    @property
    def dense_layers(self) -> int:
        return self.layers - (self.moe.sparse_layers if self.moe else 0)

    @property
    def expert_params(self) -> int:
        return self.expert_params_per_layer * (self.moe.sparse_layers if self.moe else 0)

    @property
    def decoder_linear_params(self) -> int:
        """Every projection inside the decoder layers except the routed experts: attention, dense
        MLPs, shared experts. Quantized checkpoints quantize these; embeddings, norms and routers
        stay in 16-bit."""
        shared = 3 * self.hidden * self.moe.shared_intermediate * self.moe.sparse_layers if self.moe else 0
        return self.layers * self.attention_params_per_layer + self.dense_layers * self.dense_mlp_params + shared

    @property
    def small_params(self) -> int:
        """Norms and routers: always kept in 16-bit."""
        router = self.hidden * self.moe.experts * self.moe.sparse_layers if self.moe else 0
        return self.layers * 2 * self.hidden + self.hidden + router

    @property
    def total_params(self) -> int:
        return (
            self.embedding_params
            + self.lm_head_params
            + self.decoder_linear_params
            + self.expert_params
            + self.small_params
            + self.vision_params
        )

    @property
    def sliding_layers(self) -> int:
        return sum(1 for w in self.layer_windows if w is not None)


def architecture_from_config(config: dict[str, Any], name: str, source: str) -> ModelArchitecture:
    """Read the keys that decide memory; any missing key raises ArchitectureError naming it."""
    text = config.get("text_config") or {}
    model_type = str(text.get("model_type") or config.get("model_type") or "unknown")
    # multimodal configs keep the language model under text_config
    merged = {**_CONFIG_CLASS_DEFAULTS.get(model_type, {}), **config, **text}
    _refuse_stateful(merged, name, model_type)

    def need(key: str, *aliases: str) -> int:
        for k in (key, *aliases):
            if merged.get(k) is not None:
                return int(merged[k])
        raise ArchitectureError(f"{name}: config.json has no {key!r}")

    layers = need("num_hidden_layers", "n_layer", "num_layers")
    hidden = need("hidden_size", "d_model", "n_embd")
    heads = need("num_attention_heads", "n_head")
    kv_heads = int(merged.get("num_key_value_heads") or heads)
    head_dim = int(merged.get("head_dim") or hidden // heads)
    vocab = need("vocab_size")
    moe = _moe_shape(merged, layers)
    intermediate = int(merged.get("intermediate_size") or 0)
    if not intermediate and not moe:
        raise ArchitectureError(f"{name}: config.json has no 'intermediate_size'")
    if moe and not intermediate:
        intermediate = moe.expert_intermediate
    tied = bool(merged.get("tie_word_embeddings", config.get("tie_word_embeddings", False)))
    dtype = str(merged.get("torch_dtype") or merged.get("dtype") or config.get("torch_dtype") or "bfloat16")
    max_pos = int(merged.get("max_position_embeddings") or merged.get("max_seq_len") or 4096)
    quant = config.get("quantization_config") or merged.get("quantization_config")
    return ModelArchitecture(
        name=name,
        model_type=model_type,
        layers=layers,
        hidden=hidden,
        heads=heads,
        kv_heads=kv_heads,
        head_dim=head_dim,
        intermediate=intermediate,
        vocab=vocab,
        tied_embeddings=tied,
        torch_dtype=dtype,
        max_position_embeddings=max_pos,
        layer_windows=_layer_windows(merged, layers, model_type),
        moe=moe,
        mla=_mla_shape(merged),
        qkv_bias=bool(merged.get("attention_bias")) or model_type.startswith("qwen2"),
        expert_bias=model_type == "gpt_oss",
        quantization_config=dict(quant) if quant else None,
        vision_params=_vision_params(config.get("vision_config")),
        source=source,
    )


def _refuse_stateful(cfg: dict[str, Any], name: str, model_type: str) -> None:
    kinds = {str(k) for k in cfg.get("layer_types") or []}
    stateful = sorted(k for k in kinds if any(s in k for s in _STATEFUL_LAYER_KINDS))
    if stateful or model_type in _STATEFUL_MODEL_TYPES:
        what = f"layer types {', '.join(stateful)}" if stateful else f"model_type {model_type!r}"
        raise ArchitectureError(
            f"{name}: {what}: hybrid recurrent/linear-attention models keep a per-request state the planner "
            "does not model; size it from a real start-up log (`Available KV cache memory`)"
        )


def _moe_shape(cfg: dict[str, Any], layers: int) -> MoeShape | None:
    experts = int(cfg.get("num_experts") or cfg.get("num_local_experts") or cfg.get("n_routed_experts") or 0)
    if experts <= 1:
        return None
    top_k = int(cfg.get("num_experts_per_tok") or cfg.get("experts_per_token") or cfg.get("moe_topk") or 1)
    width = int(cfg.get("moe_intermediate_size") or cfg.get("intermediate_size") or 0)
    shared = int(cfg.get("shared_expert_intermediate_size") or 0)
    if not shared and cfg.get("n_shared_experts"):
        shared = int(cfg["n_shared_experts"]) * width
    first_dense = int(cfg.get("first_k_dense_replace") or 0)
    step = int(cfg.get("decoder_sparse_step") or 1)
    dense_only = {int(i) for i in cfg.get("mlp_only_layers") or []}
    sparse = sum(1 for i in range(layers) if i >= first_dense and i not in dense_only and (i + 1) % step == 0)
    return MoeShape(experts=experts, experts_per_token=top_k, expert_intermediate=width, shared_intermediate=shared, sparse_layers=sparse)


def _mla_shape(cfg: dict[str, Any]) -> MlaShape | None:
    if not cfg.get("kv_lora_rank"):
        return None
    return MlaShape(
        kv_lora_rank=int(cfg["kv_lora_rank"]),
        q_lora_rank=int(cfg["q_lora_rank"]) if cfg.get("q_lora_rank") else None,
        qk_rope_head_dim=int(cfg.get("qk_rope_head_dim") or 64),
        qk_nope_head_dim=int(cfg.get("qk_nope_head_dim") or 128),
        v_head_dim=int(cfg.get("v_head_dim") or 128),
    )


def _layer_windows(cfg: dict[str, Any], layers: int, model_type: str) -> tuple[int | None, ...]:
    """Which layers attend only to a sliding window, following the config's own conventions:
    an explicit `layer_types` list; Gemma 2's alternation; Gemma 3's `sliding_window_pattern`;
    a window on every layer (Mistral v0.1); Qwen 2's `use_sliding_window`, off in every release."""
    window = cfg.get("sliding_window")
    if cfg.get("use_sliding_window") is False or not window:
        return (None,) * layers
    window = int(window)
    types = cfg.get("layer_types")
    if types:
        if len(types) != layers:
            raise ArchitectureError(f"layer_types lists {len(types)} layers, num_hidden_layers is {layers}")
        return tuple(window if "sliding" in str(t) else None for t in types)
    if model_type == "gemma2":
        return tuple(window if i % 2 == 0 else None for i in range(layers))
    pattern = cfg.get("sliding_window_pattern")
    if pattern:
        return tuple(None if (i + 1) % int(pattern) == 0 else window for i in range(layers))
    return (window,) * layers


def _vision_params(vision: dict[str, Any] | None) -> int:
    """A ViT tower's size from depth and widths: attention 4h² plus an MLP 2·h·i (3·h·i gated) per block."""
    if not vision:
        return 0
    depth = int(vision.get("depth") or vision.get("num_hidden_layers") or 0)
    width = int(vision.get("hidden_size") or vision.get("embed_dim") or 0)
    inner = int(vision.get("intermediate_size") or 4 * width)
    mlp = (3 if vision.get("hidden_act") == "silu" else 2) * width * inner
    return depth * (4 * width * width + mlp)


def catalog_architecture(name: str) -> ModelArchitecture | None:
    entry = catalog_entry(name)
    if entry is None:
        return None
    return architecture_from_config(entry["config"], name=name, source=entry["source"])


def architecture_from_file(path: str | Path) -> ModelArchitecture:
    """A user's own config.json (or a directory holding one)."""
    path = Path(path)
    if path.is_dir():
        path = path / "config.json"
    try:
        config = json.loads(path.read_bytes().decode("utf-8"))
    except OSError as err:
        raise ArchitectureError(f"{path}: cannot read ({err.strerror})") from None
    except UnicodeDecodeError:
        raise ArchitectureError(f"{path}: not UTF-8 text, so not a config.json") from None
    except json.JSONDecodeError as err:
        raise ArchitectureError(f"{path}: not JSON ({err.msg} at line {err.lineno})") from None
    except (RecursionError, ValueError):  # nesting past json's limit; an integer past Python's digit limit
        raise ArchitectureError(f"{path}: not a config.json Hugging Face would write (nested too deeply, or a number too long)") from None
    if not isinstance(config, dict):
        raise ArchitectureError(f"{path}: not a config.json object")
    return architecture_from_config(config, name=str(config.get("_name_or_path") or path.parent.name or path.name), source=str(path))
