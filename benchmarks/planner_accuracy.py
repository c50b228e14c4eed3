"""How close the capacity planner comes to real vLLM start-ups (issue 5's accuracy figures).

Replays every case of tests/fixtures/vllm_startup_cases.yaml through the memory model and prints,
per case, predicted against logged weights, KV-cache GiB and KV tokens, and the fit verdict for
the cases that failed to start; then the mean absolute error of KV tokens over the `calibrate`
cases. tests/test_memory_model.py gates on the same numbers.

    venv/bin/python benchmarks/planner_accuracy.py [--markdown]   (--markdown: README's table only)
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from components.planner.cases import accuracy_table, kv_errors_by, mean_abs, replay_all  # noqa: E402


def main() -> None:
    results = replay_all()
    if "--markdown" in sys.argv[1:]:  # README's accuracy table
        print(accuracy_table(results), end="")
        return
    token_errors, gib_errors, weight_errors = [], [], []
    print(f"{'case':48} {'use':9} {'weights GiB':>15} {'KV GiB':>15} {'KV tokens':>21} {'err':>7} {'band GiB (low..high)':>21}  verdict")
    for r in results:
        if r.predicted is None:
            note = "layout only" if r.use == "layout" else "excluded"
            print(f"{r.id[:48]:48} {r.use:9} {'':>15} {'':>15} {'':>21} {'':>7} {'':>21}  {note}")
            continue
        p, o = r.predicted, r.observed
        w = f"{p.weights_gib:6.2f}/{o['weights_gib']:6.2f}" if "weights_gib" in o else f"{p.weights_gib:6.2f}/     -"
        kv = f"{p.kv_cache_gib:6.2f}/{o['kv_cache_gib']:6.2f}" if "kv_cache_gib" in o else f"{p.kv_cache_gib:6.2f}/     -"
        tok = f"{p.kv_cache_tokens:>9}/{int(o['kv_cache_tokens']):>9}" if "kv_cache_tokens" in o else f"{p.kv_cache_tokens:>9}/        -"
        err = r.error("kv_cache_tokens")
        if r.use == "calibrate" and err is not None:
            token_errors.append(err)
        elif r.use == "calibrate" and r.error("kv_cache_gib") is not None:
            gib_errors.append(r.error("kv_cache_gib"))
        if r.error("weights_gib") is not None:
            weight_errors.append(r.error("weights_gib"))
        verdict = "fits" if p.fits else ("refused" if p.refused else "may not fit (warns)")
        if r.use == "fail":
            verdict += " (failed in reality: " + ("OK" if not p.fits else "MISSED") + ")"
        elif r.outcome.startswith("started") and p.refused:
            verdict += " (started in reality: WRONGLY REFUSED)"
        band = f"{p.kv_cache_gib_low:7.2f}..{p.kv_cache_gib_high:7.2f}"
        print(f"{r.id[:48]:48} {r.use:9} {w:>15} {kv:>15} {tok:>21} {'' if err is None else f'{err:+.1%}':>7} {band:>21}  {verdict}")
    fails = [r for r in results if r.use == "fail"]
    caught = sum(1 for r in fails if r.predicted and not r.predicted.fits)
    print()
    print(f"KV-cache tokens, mean absolute error over {len(token_errors)} calibrate cases: {mean_abs(token_errors):.2%}"
          f" (worst {max(abs(e) for e in token_errors):.1%})")
    print(f"KV-cache GiB, mean absolute error over {len(gib_errors)} calibrate cases that log no token count: {mean_abs(gib_errors):.2%}"
          f" (worst {max(abs(e) for e in gib_errors):.1%})")
    print(f"Weights, mean absolute error over {len(weight_errors)} cases: {mean_abs(weight_errors):.2%}")
    print(f"Cases that failed to start, predicted not to fit: {caught}/{len(fails)}"
          f" (refused at preview: {sum(1 for r in fails if r.predicted and r.predicted.refused)})")
    started = [r for r in results if r.predicted is not None and r.outcome.startswith("started")]
    print(f"Cases that started, refused at preview: {sum(1 for r in started if r.predicted.refused)}/{len(started)}")
    logged = [r for r in results if r.predicted is not None and "kv_cache_gib" in r.observed]
    inside = sum(1 for r in logged if r.predicted.kv_cache_gib_low - 0.005 <= r.observed["kv_cache_gib"] <= r.predicted.kv_cache_gib_high + 0.005)
    print(f"Logged KV cache inside the band: {inside}/{len(logged)}")
    for group in ("release_range", "family", "model_family"):
        print()
        print(f"KV cache error by {group.replace('_', ' ')} (calibrate cases; tokens where logged, else GiB):")
        for label, errors in sorted(kv_errors_by(results, group).items()):
            signs = f"{sum(e > 0 for e in errors)} over / {sum(e < 0 for e in errors)} under"
            print(f"  {label:18} {len(errors):3} cases  mean absolute {mean_abs(errors):6.2%}  mean signed {sum(errors) / len(errors):+6.2%}  ({signs})")
    print(f"Excluded cases (reasons in the fixture): {sum(1 for r in results if r.use == 'excluded')}")


if __name__ == "__main__":
    main()
