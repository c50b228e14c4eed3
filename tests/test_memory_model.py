"""The capacity planner's memory model, held against real vLLM start-up logs.

tests/fixtures/vllm_startup_cases.yaml keeps every case with its source; each `planner:` block
says how the case is used. These tests gate on the figures benchmarks/planner_accuracy.py prints.
"""

from __future__ import annotations

import dataclasses

import pytest

from components.catalog.models import catalog_names
from components.planner.architectures import (
    ArchitectureError,
    architecture_from_config,
    architecture_from_file,
    catalog_architecture,
)
from components.planner.cases import case_shape, load_cases, mean_abs, replay_all
from components.planner.memory import GIB, ServingShape, estimate, kv_cache_layout, weight_bytes_per_rank
from components.planner.weight_formats import WeightFormatError, activation_dtype, kv_cache_bytes, weight_format
from components.vllm.memory_profiles import memory_profile, version_key

RESULTS = replay_all()
CASES = {c["id"]: c for c in load_cases()}


def test_every_case_says_how_it_is_used_and_why_when_excluded():
    for case in CASES.values():
        planner = case["planner"]
        assert planner["use"] in {"calibrate", "fail", "terms", "layout", "excluded"}, case["id"]
        if planner["use"] == "excluded":
            assert len(planner.get("why", "")) > 20, case["id"]
        if planner["use"] == "fail":
            assert case["outcome"].startswith("failed"), case["id"]
    assert sum(1 for c in CASES.values() if c["planner"]["use"] == "calibrate") >= 8


def test_kv_tokens_mean_absolute_error_is_at_most_3_percent():
    errors = [r.error("kv_cache_tokens") for r in RESULTS if r.use == "calibrate" and r.error("kv_cache_tokens") is not None]
    assert len(errors) >= 7
    assert mean_abs(errors) <= 0.03, [f"{e:+.1%}" for e in errors]
    # dense and MoE, TP 1, 2 and 4, and a quantized (mxfp4) model are all among them
    ids = [r.id for r in RESULTS if r.use == "calibrate" and r.error("kv_cache_tokens") is not None]
    assert any("gpt-oss" in i for i in ids) and any("tp2" in i for i in ids) and any("tp4" in i for i in ids)


def test_kv_cache_gib_is_close_where_tokens_were_not_logged():
    for r in RESULTS:
        if r.use == "calibrate" and "kv_cache_gib" in r.observed:
            assert abs(r.error("kv_cache_gib")) <= 0.09, (r.id, r.predicted.kv_cache_gib, r.observed["kv_cache_gib"])


def test_every_case_that_failed_to_start_is_predicted_not_to_fit():
    fails = [r for r in RESULTS if r.use == "fail"]
    assert len(fails) >= 5
    for r in fails:
        assert not r.predicted.fits, (r.id, r.predicted.reason)
        assert r.predicted.reason


def test_weights_match_model_loading_lines():
    errors = [r.error("weights_gib") for r in RESULTS if r.error("weights_gib") is not None]
    assert len(errors) >= 15
    assert mean_abs(errors) <= 0.03
    assert max(abs(e) for e in errors) <= 0.075  # gpt-oss on A100 (Marlin mxfp4 fallback) is the worst
    # the W8A8 70B case has no GPU, so only its weights are compared
    w8 = CASES["vllm-pr12569-llama31-70b-w8a8-v1"]["planner"]
    arch = dataclasses.replace(catalog_architecture(w8["architecture"]), quantization_config=w8["quantization_config"])
    weights = weight_bytes_per_rank(arch, weight_format(None, arch.quantization_config, "bfloat16"), 1) / GIB
    # early-2025 vLLM printed "GB" for a value computed in GiB
    assert weights == pytest.approx(w8["observed"]["weights_gib"], rel=0.01)


def test_block_arithmetic_turns_logged_kv_memory_into_the_logged_token_count():
    checked = 0
    for r in RESULTS:
        if r.layout_tokens is not None and "kv_cache_tokens" in r.observed:
            assert r.layout_tokens == pytest.approx(r.observed["kv_cache_tokens"], rel=0.002), r.id
            checked += 1
    assert checked >= 8
    # an fp8 KV cache stores one byte per element: dense and MoE logs with kv_cache_dtype=fp8
    fp8 = [r for r in RESULTS if CASES[r.id]["planner"].get("kv_cache_dtype") == "fp8" and r.layout_tokens is not None]
    assert len(fp8) >= 2
    for r in fp8:
        assert r.layout_tokens == pytest.approx(r.observed["kv_cache_tokens"], rel=0.002), r.id


def test_kv_cache_gib_mean_error_is_small_where_only_gib_was_logged():
    errors = [r.error("kv_cache_gib") for r in RESULTS
              if r.use == "calibrate" and r.error("kv_cache_tokens") is None and r.error("kv_cache_gib") is not None]
    assert len(errors) >= 6
    assert mean_abs(errors) <= 0.03, [f"{e:+.1%}" for e in errors]


def test_the_context_that_started_is_predicted_to_fit_and_the_one_that_failed_is_not():
    results = {r.id: r for r in RESULTS}
    started, failed = results["llmd-qwen3-32b-1xH100-16k"], results["llmd-qwen3-32b-1xH100-32k-fail"]
    assert started.predicted.fits and not failed.predicted.fits
    assert "max-model-len 32000" in failed.predicted.reason


def test_one_request_need_matches_vllms_error_message():
    planner = CASES["recipes-12-qwen3-coder-480b-fp8-H20-dp8-gmu095"]["planner"]
    arch = catalog_architecture(planner["architecture"])
    layout = kv_cache_layout(arch, 1, 2, memory_profile(planner["version"]), 8192)
    need = layout.bytes_for_one_request(planner["max_model_len"]) / GIB
    assert need == pytest.approx(62.00, abs=0.01)
    # both runs had less than that and failed
    for case_id in ("recipes-12-qwen3-coder-480b-fp8-H20-dp8-gmu090", "recipes-12-qwen3-coder-480b-fp8-H20-dp8-gmu095"):
        assert CASES[case_id]["planner"]["observed"]["kv_cache_gib"] < need


def test_sliding_window_models_count_only_window_blocks():
    arch = catalog_architecture("openai/gpt-oss-120b")
    assert arch.sliding_layers == 18 and arch.layers == 36
    layout = kv_cache_layout(arch, 4, 2, memory_profile("0.10.1.1"), 2048)
    # vLLM logged 330,018 blocks and 284.25x concurrency at 16,384 tokens for this shape
    assert 330018 / layout.blocks_per_request(16384) == pytest.approx(284.25, abs=0.01)


def test_catalog_parameter_counts_match_published_totals():
    published = {
        "Qwen/Qwen3-8B": 8.19e9,
        "Qwen/Qwen3-32B": 32.76e9,
        "meta-llama/Llama-3.1-70B-Instruct": 70.55e9,
        "meta-llama/Llama-3.1-405B-Instruct-FP8": 405.85e9,
        "openai/gpt-oss-120b": 116.83e9,
        "openai/gpt-oss-20b": 20.91e9,
        "mistralai/Mixtral-8x7B-Instruct-v0.1": 46.70e9,
        "deepseek-ai/DeepSeek-V3": 671.0e9,
        "microsoft/phi-4": 14.66e9,
        "google/gemma-2-9b": 9.24e9,
    }
    for name, total in published.items():
        assert catalog_architecture(name).total_params == pytest.approx(total, rel=0.01), name


def test_catalog_has_the_stack_models_and_every_entry_parses():
    names = catalog_names()
    for needed in ("Qwen/Qwen3-4B-Instruct-2507", "Qwen/Qwen3-8B", "Qwen/Qwen3-32B"):
        assert needed in names
    for name in names:
        arch = catalog_architecture(name)
        assert arch.layers > 0 and arch.head_dim > 0 and arch.source


def test_head_dim_comes_from_the_config_not_hidden_over_heads():
    arch = catalog_architecture("Qwen/Qwen3-32B")
    assert (arch.hidden // arch.heads, arch.head_dim) == (80, 128)


def test_hybrid_recurrent_models_are_refused_with_a_reason():
    config = {"model_type": "qwen3_next", "num_hidden_layers": 48, "hidden_size": 2048, "num_attention_heads": 16, "vocab_size": 151936}
    with pytest.raises(ArchitectureError, match="recurrent"):
        architecture_from_config(config, "Qwen/Qwen3-Next-80B-A3B", "test")
    with pytest.raises(ArchitectureError, match="linear_attention"):
        architecture_from_config({**config, "model_type": "x", "layer_types": ["linear_attention", "full_attention"]}, "m", "test")


def test_user_config_json_is_read(tmp_path):
    (tmp_path / "config.json").write_text(
        '{"model_type": "llama", "num_hidden_layers": 32, "hidden_size": 4096, "num_attention_heads": 32,'
        ' "num_key_value_heads": 8, "intermediate_size": 14336, "vocab_size": 128256, "torch_dtype": "bfloat16",'
        ' "max_position_embeddings": 131072}'
    )
    arch = architecture_from_file(tmp_path)
    assert arch.total_params == pytest.approx(8.03e9, rel=0.01)
    (tmp_path / "bad.json").write_text("{nope")
    with pytest.raises(ArchitectureError, match="not JSON"):
        architecture_from_file(tmp_path / "bad.json")
    with pytest.raises(ArchitectureError, match="intermediate_size"):
        architecture_from_config({"num_hidden_layers": 2, "hidden_size": 8, "num_attention_heads": 2, "vocab_size": 10}, "m", "t")


def test_weight_formats_store_scales_beside_packed_values():
    assert weight_format("awq", None, "bfloat16").linear_bytes == pytest.approx(0.5 + 2 / 128 + 0.5 / 128)
    fp8 = weight_format(None, {"quant_method": "fp8", "weight_block_size": [128, 128]}, "bfloat16")
    assert fp8.linear_bytes == pytest.approx(1 + 4 / 16384) and fp8.dense_bytes == 2
    mx = weight_format(None, {"quant_method": "mxfp4"}, "bfloat16", hidden=2880)
    assert mx.linear_bytes == 2 and mx.expert_bytes == pytest.approx((0.5 + 1 / 32) * 3072 / 2880)
    assert weight_format(None, None, "float16").name == "fp16"
    with pytest.raises(WeightFormatError, match="not modelled"):
        weight_format("squeezellm", None, "bfloat16")
    assert activation_dtype("auto", "float32") == "bfloat16"
    assert kv_cache_bytes("fp8", "bfloat16") == 1 and kv_cache_bytes("auto", "bfloat16") == 2


def test_release_profiles_are_picked_by_version():
    assert version_key("0.29.1rc1.dev17+gd2d649e67") == (0, 29, 1)
    assert memory_profile("0.33.0").since == "0.29.0"
    assert memory_profile("0.10.1.1").since == "0.8.0"
    assert memory_profile("0.8.3", engine="v0").engine == "v0"
    with pytest.raises(ValueError, match="older"):
        memory_profile("0.5.3")
    # a profile states only its changes: 0.11 is 0.8 with another non-torch growth with the ranks
    v08, v011 = memory_profile("0.8.0"), memory_profile("0.11.0")
    assert dataclasses.replace(
        v011, since=v08.since, evidence=v08.evidence,
        non_torch_per_extra_rank_gib=v08.non_torch_per_extra_rank_gib, non_torch_per_doubling_gib=v08.non_torch_per_doubling_gib,
        pcie_only_gpus=v08.pcie_only_gpus, non_torch_per_doubling_pcie_gib=v08.non_torch_per_doubling_pcie_gib,
    ) == v08
    assert (v08.non_torch_per_extra_rank_gib, v08.non_torch_per_doubling_gib) == (0.12, 0.0)
    assert (v011.non_torch_per_extra_rank_gib, v011.non_torch_per_doubling_gib) == (0.0, 0.53)
    # in the pinned release, as in every V1 one, non-torch memory grows with TP (NCCL buffers)
    pinned = [estimate(catalog_architecture("Qwen/Qwen3-32B"), ServingShape(gpu_memory_gib=44.39, tensor_parallel=tp)).non_torch_gib for tp in (1, 2, 4)]
    assert pinned[0] < pinned[1] < pinned[2]


QWEN3_8B = catalog_architecture("Qwen/Qwen3-8B")


def test_more_memory_utilization_fp8_kv_and_tp_all_give_more_tokens():
    base = estimate(QWEN3_8B, ServingShape(gpu_memory_gib=21.95, max_model_len=8192, gpu_name="l4"))
    more_gmu = estimate(QWEN3_8B, ServingShape(gpu_memory_gib=21.95, max_model_len=8192, gpu_name="l4", gpu_memory_utilization=0.95))
    fp8 = estimate(QWEN3_8B, ServingShape(gpu_memory_gib=21.95, max_model_len=8192, gpu_name="l4", kv_cache_dtype="fp8"))
    tp2 = estimate(QWEN3_8B, ServingShape(gpu_memory_gib=21.95, max_model_len=8192, gpu_name="l4", tensor_parallel=2))
    assert base.fits and base.kv_cache_tokens > 8192
    assert more_gmu.kv_cache_tokens > base.kv_cache_tokens
    assert fp8.kv_cache_tokens == pytest.approx(2 * base.kv_cache_tokens, rel=0.01)
    assert tp2.kv_cache_tokens > 2 * base.kv_cache_tokens  # weights halve per GPU as well
    assert base.max_concurrency == pytest.approx(base.kv_cache_tokens / 8192, rel=0.01)


def test_a_model_that_does_not_fit_says_why_and_how_long_a_context_would():
    result = estimate(QWEN3_8B, ServingShape(gpu_memory_gib=21.95, max_model_len=131072, gpu_name="l4"))
    assert not result.fits
    assert "max-model-len 131072" in result.reason and "longest that fits" in result.reason
    too_big = estimate(catalog_architecture("Qwen/Qwen3-32B"), ServingShape(gpu_memory_gib=21.95, max_model_len=8192, gpu_name="l4"))
    assert not too_big.fits and "no memory left" in too_big.reason and too_big.kv_cache_tokens == 0


def test_fit_json_keys_are_the_issue_contract():
    keys = list(estimate(QWEN3_8B, ServingShape(gpu_memory_gib=21.95, max_model_len=8192)).as_dict())
    assert keys[:8] == ["weights_gib", "activation_gib", "non_torch_gib", "kv_cache_gib", "kv_cache_tokens", "max_concurrency", "fits", "reason"]


def test_case_shapes_use_the_release_and_gpu_of_the_log():
    shape = case_shape(CASES["dl22-qwen2-7b-1xA100-80-gmu025"]["planner"])
    assert (shape.vllm_version, shape.gpu_name, shape.gpu_memory_utilization) == ("0.10.1.1", "a100-80gb", 0.25)


def test_from_0_17_the_profiled_sampler_is_tritons_not_a_torch_sort():
    """Issue 20's data point: Llama-3.1-8B, TP 1, H100 80GB, gmu 0.95, max-model-len 8192, vLLM
    0.19.0 `vllm serve` logs 'torch peak memory increase: 1.89GiB'. The sort-path term gave 4.77;
    the Triton kernel's rule read in the 0.19.0 wheel gives what vLLM measured."""
    from components.catalog.gpus import gpu_models
    from components.planner.architectures import catalog_architecture
    from components.planner.memory import ServingShape, estimate

    arch = catalog_architecture("meta-llama/Llama-3.1-8B-Instruct")
    shape = ServingShape(gpu_memory_gib=gpu_models()["h100"].cuda_total_gib, gpu_name="h100", gpu_memory_utilization=0.95,
                         max_model_len=8192, vllm_version="0.19.0")
    triton = estimate(arch, shape)
    assert triton.max_num_seqs == 1024 and abs(triton.activation_gib - 1.89) / 1.89 < 0.1
    sort = estimate(arch, ServingShape(**{**shape.__dict__, "vllm_version": "0.16.0"}))
    assert sort.activation_gib > 2 * triton.activation_gib  # up to 0.16 the torch sort runs
    flashinfer = estimate(arch, ServingShape(**{**shape.__dict__, "vllm_version": "0.21.0"}))
    assert flashinfer.activation_gib < triton.activation_gib  # FlashInfer by default from 0.21


def test_gpus_without_nvlink_grow_less_with_the_ranks():
    """From 0.11 the non-torch memory grows by log2(TP): 0.53 GiB per doubling on NVLink GPUs
    (H100 logs), 0.11 on PCIe-only ones (the L40S TP 4 log), so an L40S replica keeps more KV."""
    arch = catalog_architecture("Qwen/Qwen2.5-72B-Instruct")
    l40s = ServingShape(gpu_memory_gib=44.32, tensor_parallel=4, gpu_memory_utilization=0.9, max_model_len=8192,
                        vllm_version="0.19.0", gpu_name="l40s")
    as_nvlink = estimate(arch, dataclasses.replace(l40s, gpu_name="h100"))
    pcie = estimate(arch, l40s)
    assert pcie.non_torch_gib == pytest.approx(0.12 + 0.11 * 2, abs=1e-6)
    assert as_nvlink.non_torch_gib == pytest.approx(0.12 + 0.53 * 2, abs=1e-6)
    assert pcie.kv_cache_gib - as_nvlink.kv_cache_gib == pytest.approx(0.84, abs=1e-6)
