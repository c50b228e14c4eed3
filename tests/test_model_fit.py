"""The preview check sees what vLLM will get: every model's architecture (catalog or its own
config.json), and the memory flags in extraArgs."""

from __future__ import annotations

import pytest
from conftest import dev_config_values, stack_from

from components.config.models import ModelConfig
from components.config.planning import max_num_seqs, model_fit
from components.planner.memory_flags import UNMODELLED_MEMORY_FLAGS, memory_flags
from components.vllm.flags import ALLOWED_EXTRA_FLAGS
from stacks.offline import run_program

NS = "llm-platform"
CUSTOM_CONFIG = "tests/fixtures/model_configs/acme-support-8b/config.json"
HYBRID_CONFIG = "tests/fixtures/model_configs/hybrid-linear-attention"


def _model(**overrides) -> ModelConfig:
    return ModelConfig(**{"name": "m", "model": "Qwen/Qwen3-8B", "gpu_type": "l40s", "max_model_len": 32768, **overrides})


def test_a_models_own_config_json_is_sized_like_the_catalog_entry_it_copies():
    catalog = model_fit(_model())
    own = model_fit(_model(model="acme/support-8b", architecture=CUSTOM_CONFIG))
    assert own is not None and own.fits
    assert own.kv_cache_tokens == catalog.kv_cache_tokens
    assert own.weights_gib == catalog.weights_gib
    local = model_fit(_model(model="/custom/support-8b", architecture=CUSTOM_CONFIG.rsplit("/", 1)[0]))  # the directory works too
    assert local.kv_cache_tokens == catalog.kv_cache_tokens


def test_fit_check_off_predicts_nothing_and_leaves_max_num_seqs_to_vllm():
    model = _model(model="acme/hybrid-3b", fit_check=False)
    assert model_fit(model) is None
    assert max_num_seqs(model) is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [("2048", 2048), ("1k", 1000), ("1K", 1024), ("25.6k", 25600), ("8G", 8 << 30), ("8g", 8 * 10**9)],
)
def test_sizes_are_read_as_vllms_human_readable_int(value, expected):
    flags, problems = memory_flags(["--max-num-batched-tokens", value, f"--kv-cache-memory-bytes={value}"])
    assert not problems
    assert flags.max_num_batched_tokens == expected
    assert flags.kv_cache_memory_gib * (1 << 30) == pytest.approx(expected)


@pytest.mark.parametrize("value", ["1.5K", "8GiB", "-1", "lots", None])
def test_sizes_vllm_would_reject_are_problems_at_their_index(value):
    args = ["--enforce-eager", "--max-num-batched-tokens"] + ([value] if value is not None else [])
    _, problems = memory_flags(args)
    assert [i for i, _ in problems] == [1]


def test_every_unmodelled_flag_is_one_a_model_may_pass():
    assert set(UNMODELLED_MEMORY_FLAGS) <= ALLOWED_EXTRA_FLAGS


def test_extra_args_move_the_prediction_the_way_vllm_does():
    base = model_fit(_model())
    eager = model_fit(_model(extra_args=["--enforce-eager"]))
    assert base.cuda_graph_gib > 0 and eager.cuda_graph_gib == 0
    assert eager.kv_cache_gib == pytest.approx(base.kv_cache_gib + base.cuda_graph_gib)

    offload = model_fit(_model(extra_args=["--cpu-offload-gb", "4"]))
    assert offload.weights_gib == pytest.approx(base.weights_gib - 4)
    assert offload.kv_cache_tokens > base.kv_cache_tokens

    wide = model_fit(_model(extra_args=["--max-num-batched-tokens", "16384"]))
    assert wide.max_num_batched_tokens == 16384 and wide.activation_gib > base.activation_gib

    reserved = model_fit(_model(extra_args=["--kv-cache-memory-bytes", "8G"]))
    assert reserved.fits and reserved.kv_cache_gib == 8.0
    assert reserved.kv_cache_tokens < base.kv_cache_tokens

    too_much = model_fit(_model(extra_args=["--kv-cache-memory-bytes", "40G"]))
    assert not too_much.fits and "--kv-cache-memory-bytes asks for 40.00 GiB" in too_much.reason


def test_expert_parallel_keeps_a_moe_replicas_weights():
    tp2 = _model(model="Qwen/Qwen3-30B-A3B", gpus_per_replica=2)
    ep = model_fit(tp2.model_copy(update={"extra_args": ["--enable-expert-parallel"]}))
    assert ep.weights_gib == pytest.approx(model_fit(tp2).weights_gib, rel=0.02)


def test_outputs_name_the_flags_the_prediction_leaves_out():
    values = dev_config_values()
    (model,) = values[f"{NS}:models"]
    model.update(model="acme/support-8b", architecture=CUSTOM_CONFIG, maxModelLen=8192,
                 extraArgs=["--speculative-config", '{"method": "ngram", "num_speculative_tokens": 4}'])
    run = run_program(stack_from(values), preview=True)
    assert run.error is None, run.error
    (out,) = run.outputs["models"]
    assert out["predicted"]["unmodelledFlags"] == ["--speculative-config"]
    assert out["predicted"]["kvCacheTokens"] >= 8192


def test_an_unchecked_model_deploys_without_a_prediction():
    values = dev_config_values()
    (model,) = values[f"{NS}:models"]
    model.update(model="acme/hybrid-3b", fitCheck=False)
    model.pop("maxNumSeqs")
    run = run_program(stack_from(values), preview=True)
    assert run.error is None, run.error
    (out,) = run.outputs["models"]
    assert "predicted" not in out and "maxNumSeqs" not in out
    (deployment,) = run.of_type("kubernetes:apps/v1:Deployment")
    (container,) = [c for c in deployment.inputs["spec"]["template"]["spec"]["containers"] if c["name"] == "vllm"]
    assert "--max-num-seqs" not in container["args"]
