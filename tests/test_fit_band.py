"""The capacity planner's uncertainty band: low / expected / high KV cache from each term's spread
on real start-up logs. Preview refuses a model only when even the optimistic end cannot hold one
max-model-len request, warns when the expected value cannot, and sizes maxNumSeqs from the
expected value."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from conftest import dev_config_values, stack_from

from components.config.models import ModelConfig
from components.config.planning import fit_problem, fit_warning, max_num_seqs, model_fit
from components.config.stack import ConfigError
from components.planner.architectures import catalog_architecture
from components.planner.cases import ACCURACY_GROUPS, accuracy_table, load_cases, replay_all
from components.planner.memory import ServingShape, cuda_graph_gib, estimate
from components.vllm.memory_profiles import memory_profile
from stacks.__main__ import main
from stacks.offline import run_program

RESULTS = replay_all()
CASES = {c["id"]: c for c in load_cases()}
NS = "llm-platform"


def _profile(result):
    planner = CASES[result.id]["planner"]
    return memory_profile(str(planner.get("version") or "0.33.0"), planner.get("engine"))


def test_every_logged_kv_cache_lies_inside_its_band():
    covered = 0
    for r in RESULTS:
        if r.predicted is None or "kv_cache_gib" not in r.observed:
            continue
        p, logged = r.predicted, r.observed["kv_cache_gib"]
        assert p.kv_cache_gib_low - 0.005 <= logged <= p.kv_cache_gib_high + 0.005, (r.id, p.kv_cache_gib_low, logged, p.kv_cache_gib_high)
        covered += 1
    assert covered >= 18


def test_the_band_is_as_wide_as_the_fixture_shows_each_term_to_stray():
    """Each term's spread in the data covers every case's logged / predicted for that term."""
    for r in RESULTS:
        if r.predicted is None:
            continue
        band, p, o = _profile(r).band, r.predicted, r.observed
        arch = catalog_architecture(CASES[r.id]["planner"]["architecture"])
        if "weights_gib" in o:
            spread = band.weights("mxfp4" in p.weight_format, bool(arch and arch.vision_params))
            assert abs(o["weights_gib"] / p.weights_gib - 1) <= spread, (r.id, "weights", o["weights_gib"], p.weights_gib)
        if "activation_gib" in o:
            assert abs(o["activation_gib"] / p.activation_gib - 1) <= band.activation, (r.id, "activation")
        if "cuda_graph_gib" in o and arch is not None and _profile(r).engine == "v1":
            estimate_gib = cuda_graph_gib(arch, memory_profile("0.33.0"))
            assert abs(o["cuda_graph_gib"] / estimate_gib - 1) <= band.cuda_graph, (r.id, "cuda graphs")


def test_no_configuration_that_started_is_refused_and_every_failure_gets_fits_false():
    started = [r for r in RESULTS if r.predicted is not None and r.outcome.startswith("started")]
    failed = [r for r in RESULTS if r.use == "fail"]
    assert len(started) >= 15 and len(failed) >= 7
    assert [r.id for r in started if r.predicted.refused] == []
    assert [r.id for r in failed if r.predicted.fits] == []
    # the band is not so wide that it refuses nothing: the clear failures are still refused
    assert {r.id for r in failed if r.predicted.refused} >= {"llmd-llama33-70b-fp8dyn-1xH100-fail", "vllm-23278-gpt-oss-120b-1xH100PCIe-default"}


@pytest.mark.parametrize("model", ["Qwen/Qwen3-8B", "openai/gpt-oss-20b", "google/gemma-3-4b-it", "Qwen/Qwen3-30B-A3B"])
@pytest.mark.parametrize(("gpu_gib", "tp"), [(22.0, 1), (44.5, 2), (79.2, 1), (79.2, 4)])
@pytest.mark.parametrize("version", ["0.10.1", "0.19.0", "0.33.0"])
def test_low_expected_high_are_ordered_and_the_verdicts_follow_them(model, gpu_gib, tp, version):
    p = estimate(catalog_architecture(model), ServingShape(gpu_memory_gib=gpu_gib, tensor_parallel=tp, max_model_len=8192, vllm_version=version))
    assert p.kv_cache_gib_low <= p.kv_cache_gib <= p.kv_cache_gib_high
    assert p.kv_cache_tokens_low <= p.kv_cache_tokens <= p.kv_cache_tokens_high
    assert p.kv_cache_gib_high > p.kv_cache_gib_low  # a band, not a point
    assert not (p.fits and p.refused)  # refused implies the expected value does not fit either


def _qwen3_4b(max_model_len: int) -> ModelConfig:
    return ModelConfig(name="m", model="Qwen/Qwen3-4B-Instruct-2507", gpu_type="l4", max_model_len=max_model_len)


def _boundary() -> int:
    """The shortest max-model-len whose expected KV cache cannot hold one request on an L4."""
    lo, hi = 1024, 1 << 20
    while lo < hi:
        mid = (lo + hi) // 2
        if model_fit(_qwen3_4b(mid)).fits:
            lo = mid + 1
        else:
            hi = mid
    return lo


def test_between_expected_and_optimistic_preview_warns_and_leaves_max_num_seqs_to_vllm():
    doubtful = _qwen3_4b(_boundary())
    fit = model_fit(doubtful)
    assert not fit.fits and not fit.refused
    assert fit_problem(doubtful) is None
    warning = fit_warning(doubtful)
    assert warning.startswith("Qwen/Qwen3-4B-Instruct-2507 may not fit: one request of max-model-len")
    assert f"{fit.kv_cache_tokens_low:,} to {fit.kv_cache_tokens_high:,} tokens" in warning
    assert max_num_seqs(doubtful) is None  # derived from the expected value only

    values = dev_config_values()
    (model,) = values[f"{NS}:models"]
    model.update(maxModelLen=doubtful.max_model_len)
    model.pop("maxNumSeqs")
    _, warnings = stack_from(values).check()
    assert [(key, message[:60]) for key, message in warnings if "may not fit" in message] == [
        ("llm-platform:models[0].maxModelLen", "Qwen/Qwen3-4B-Instruct-2507 may not fit: one request of max-")
    ]
    run = run_program(stack_from(values), preview=True)
    assert run.error is None, run.error
    (out,) = run.outputs["models"]
    assert out["predicted"]["fits"] is False and out.get("maxNumSeqs") is None
    (deployment,) = run.of_type("kubernetes:apps/v1:Deployment")
    args = deployment.inputs["spec"]["template"]["spec"]["containers"][0]["args"]
    assert not any(str(a).startswith("--max-num-seqs") for a in args)  # vLLM sizes it at start-up
    predicted = out["predicted"]
    assert predicted["kvCacheTokensLow"] <= predicted["kvCacheTokens"] < predicted["kvCacheTokensHigh"]
    assert predicted["kvCacheTokensHigh"] >= doubtful.max_model_len


def test_beyond_the_optimistic_end_preview_fails_with_the_band_in_the_error():
    length = _boundary()
    while not model_fit(_qwen3_4b(length)).refused:
        length += 1024
    refused = _qwen3_4b(length)
    problem = fit_problem(refused)
    assert problem.startswith("Qwen/Qwen3-4B-Instruct-2507 does not fit: one request of max-model-len")
    assert "at the optimistic end of the planner's band" in problem and fit_warning(refused) is None
    values = dev_config_values()
    (model,) = values[f"{NS}:models"]
    model.update(maxModelLen=length)
    model.pop("maxNumSeqs")  # the shape fit_problem saw: vLLM's default sequences
    with pytest.raises(ConfigError) as err:
        stack_from(values).check()
    assert "llm-platform:models[0].maxModelLen" in str(err.value) and "optimistic end" in str(err.value)


def test_a_fitting_model_has_its_derived_max_num_seqs_and_its_band_in_the_outputs():
    values = dev_config_values()
    (model,) = values[f"{NS}:models"]
    model.pop("maxNumSeqs")
    run = run_program(stack_from(values), preview=True)
    (out,) = run.outputs["models"]
    predicted = out["predicted"]
    assert predicted["fits"] is True and out["maxNumSeqs"] >= 8
    assert predicted["kvCacheTokensLow"] < predicted["kvCacheTokens"] < predicted["kvCacheTokensHigh"]


def test_fit_json_says_the_band_and_what_preview_does(capsys):
    def fit(max_len: int) -> dict:
        assert main(["fit", "--model", "Qwen/Qwen3-4B-Instruct-2507", "--gpu", "l4", "--max-model-len", str(max_len), "--json"]) == 0
        return json.loads(capsys.readouterr().out)

    ok, doubtful = fit(8192), fit(_boundary())
    assert ok["fits"] and not ok["refused"] and ok["kv_cache_tokens_low"] < ok["kv_cache_tokens"] < ok["kv_cache_tokens_high"]
    assert not doubtful["fits"] and not doubtful["refused"]
    assert main(["fit", "--model", "Qwen/Qwen3-4B-Instruct-2507", "--gpu", "l4", "--max-model-len", str(_boundary())]) == 0
    text = capsys.readouterr().out
    assert "MAY NOT FIT" in text and "preview warns" in text and " band " in text


def test_a_band_of_zero_width_gives_back_the_old_single_verdict(monkeypatch):
    """With every spread at zero the bounds collapse onto the expected value (the band adds only
    the spreads, nothing else)."""
    arch = catalog_architecture("Qwen/Qwen3-8B")
    shape = ServingShape(gpu_memory_gib=22.0, max_model_len=8192)
    profile = memory_profile(shape.vllm_version)
    zero = dataclasses.replace(profile.band, **{f.name: 0.0 for f in dataclasses.fields(profile.band)})
    import components.planner.memory as memory

    original = memory.memory_profile
    monkeypatch.setattr(memory, "memory_profile", lambda *a, **k: dataclasses.replace(original(*a, **k), band=zero))
    p = estimate(arch, shape)
    assert p.kv_cache_gib_low == pytest.approx(p.kv_cache_gib) and p.kv_cache_gib_high == pytest.approx(p.kv_cache_gib)
    assert p.refused == (not p.fits)


def test_readme_states_the_accuracy_the_fixture_gives():
    """README's per-release and per-family figures are the benchmark's own table, regenerated
    from the fixture: a change of the model or of the fixture that moves them fails here until
    README is updated (`python benchmarks/planner_accuracy.py --markdown`)."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    start = readme.index("<!-- planner-accuracy:")
    start = readme.index("\n", start) + 1
    stated = readme[start:readme.index("<!-- /planner-accuracy -->")]
    table = accuracy_table(RESULTS)
    assert stated == table
    assert "| vLLM release | 0.10-0.14 |" in table and "| dense or MoE | MoE |" in table


def test_accuracy_table_groups_every_calibrated_case_once_per_grouping():
    calibrated = [r for r in RESULTS if r.use == "calibrate" and r.kv_error() is not None]
    rows = [line.split("|") for line in accuracy_table(RESULTS).splitlines()[2:]]
    for _, title in ACCURACY_GROUPS:
        assert sum(int(row[3]) for row in rows if row[1].strip() == title) == len(calibrated)
