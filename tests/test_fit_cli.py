"""`python -m stacks fit`: the issue's flags, the JSON contract and one-line errors."""

from __future__ import annotations

import json

import pytest

from stacks.__main__ import main


def _fit(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["fit", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_json_has_the_issue_keys_and_a_verdict(capsys):
    code, out, _ = _fit(capsys, "--model", "Qwen/Qwen3-32B", "--gpu", "l40s", "--tp", "4", "--max-model-len", "32768",
                        "--gpu-memory-utilization", "0.92", "--json")
    data = json.loads(out)
    assert code == 0
    for key in ("weights_gib", "activation_gib", "non_torch_gib", "kv_cache_gib", "kv_cache_tokens", "max_concurrency", "fits", "reason"):
        assert key in data
    assert data["fits"] is True and data["kv_cache_tokens"] > 32768
    assert data["per_replica"]["gpus"] == 4


def test_every_flag_is_accepted_and_changes_what_it_should(capsys, tmp_path):
    base = ["--model", "Qwen/Qwen3-8B", "--gpu-memory-gib", "44.3", "--max-model-len", "8192", "--json"]
    auto = json.loads(_fit(capsys, *base)[1])
    fp8 = json.loads(_fit(capsys, *base, "--kv-cache-dtype", "fp8", "--dtype", "bfloat16", "--vllm-version", "0.33.0")[1])
    quant = json.loads(_fit(capsys, *base, "--quantization", "fp8")[1])
    assert fp8["kv_cache_tokens"] == pytest.approx(2 * auto["kv_cache_tokens"], rel=0.01)
    assert quant["weights_gib"] < 0.6 * auto["weights_gib"]
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"model_type": "llama", "num_hidden_layers": 32, "hidden_size": 4096, "num_attention_heads": 32,
                                  "num_key_value_heads": 8, "intermediate_size": 14336, "vocab_size": 128256,
                                  "torch_dtype": "bfloat16", "max_position_embeddings": 8192}))
    code, out, _ = _fit(capsys, "--architecture", str(config), "--gpu", "l4", "--tp", "2")
    assert code == 0 and "TP 2" in out and "requests of 8,192 tokens" in out


def test_human_output_says_why_a_model_does_not_fit(capsys):
    code, out, _ = _fit(capsys, "--model", "Qwen/Qwen3-8B", "--gpu", "l4", "--max-model-len", "131072")
    assert code == 0 and "DOES NOT FIT" in out and "longest that fits" in out
    data = json.loads(_fit(capsys, "--model", "Qwen/Qwen3-8B", "--gpu", "l4", "--max-model-len", "131072", "--json")[1])
    assert data["fits"] is False
    assert data["smallest_fit"]["gpus_per_replica"] in (2, 4) and data["smallest_fit"]["gpu_type"] in ("l40s", "a100-40gb")
    fits = json.loads(_fit(capsys, "--model", "Qwen/Qwen3-8B", "--gpu", "l40s", "--max-model-len", "32768", "--json")[1])
    assert fits["fits"] is True and fits["smallest_fit"] is None


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--model", "org/unknown", "--gpu", "l4"], "not in the catalog"),
        (["--model", "Qwen/Qwen3-8B", "--gpu", "v100"], "not a known GPU type"),
        (["--model", "Qwen/Qwen3-8B", "--gpu", "l4", "--tp", "3"], "must be one of 1, 2, 4, 8"),
        (["--model", "Qwen/Qwen3-8B", "--gpu", "l4", "--quantization", "squeezellm"], "not modelled"),
        (["--model", "Qwen/Qwen3-8B", "--gpu", "l4", "--vllm-version", "latest"], "not a release number"),
        (["--architecture", "/nonexistent/config.json", "--gpu", "l4"], "cannot read"),
    ],
)
def test_bad_flags_get_one_line_and_exit_2(capsys, argv, message):
    code, out, err = _fit(capsys, *argv)
    assert code == 2 and message in err and "Traceback" not in err and err.count("\n") == 1


def test_the_batch_eager_and_sampler_flags_move_the_terms_they_size(capsys):
    base = ["--model", "meta-llama/Llama-3.1-8B-Instruct", "--gpu", "h100", "--gpu-memory-utilization", "0.95",
            "--max-model-len", "8192", "--json"]
    default = json.loads(_fit(capsys, *base)[1])
    fewer = json.loads(_fit(capsys, *base, "--max-num-seqs", "64")[1])
    assert fewer["max_num_seqs"] == 64 and fewer["activation_gib"] < default["activation_gib"]
    assert fewer["kv_cache_tokens"] > default["kv_cache_tokens"]  # the profiled sampler batch is smaller
    smaller = json.loads(_fit(capsys, *base, "--max-num-batched-tokens", "2048")[1])
    assert smaller["max_num_batched_tokens"] == 2048 and smaller["activation_gib"] <= default["activation_gib"]
    eager = json.loads(_fit(capsys, *base, "--enforce-eager")[1])
    assert default["cuda_graph_gib"] > 0 and eager["cuda_graph_gib"] == 0 and eager["kv_cache_tokens"] > default["kv_cache_tokens"]
    torch = json.loads(_fit(capsys, *base, "--sampler", "torch", "--vllm-version", "0.19.0")[1])
    flashinfer = json.loads(_fit(capsys, *base, "--sampler", "flashinfer", "--vllm-version", "0.19.0")[1])
    assert flashinfer["activation_gib"] < torch["activation_gib"]


def test_a_batch_smaller_than_the_sequences_is_refused_as_vllm_would(capsys):
    code, out, err = _fit(capsys, "--model", "Qwen/Qwen3-8B", "--gpu", "l4", "--max-num-seqs", "512", "--max-num-batched-tokens", "256")
    assert code == 2 and not out and err.strip().count("\n") == 0 and "must be ≥ --max-num-seqs (512)" in err
    code, _, err = _fit(capsys, "--model", "Qwen/Qwen3-8B", "--gpu", "l4", "--max-num-seqs", "0")
    assert code == 2 and "--max-num-seqs 0: must be positive" in err
