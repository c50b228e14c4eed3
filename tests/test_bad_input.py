"""Bad input never gets through (issue 21): generated invalid stack configs and CLI flags.

Every mutation in tests/bad_input.py is invalid by the config's own schema. Each must fail in the
program itself with a config error at the key it touched, in plain words, before any resource is
registered; each CLI flag value outside what the flag takes must exit 2 with one error line.
"""

from __future__ import annotations

import contextlib
import io

import pytest
from bad_input import DEVELOPER_WORDING, UNKNOWN_KEY, applied, mutations, related
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from components.config.stack import CONFIG_NAMESPACE, ConfigError
from stacks.__main__ import main
from stacks.offline import run_program
from stacks.stack_files import available_stacks, load_stack_file, stack_file_from_values

STACKS = available_stacks()
CONFIGS = {stack: load_stack_file(stack).namespace_values() for stack in STACKS}
BY_STACK = {stack: mutations(CONFIGS[stack]) for stack in STACKS}
CASES = [(stack, m) for stack in STACKS for m in BY_STACK[stack]]


def test_the_generator_reaches_every_stack_and_kind_of_mistake():
    assert len(CASES) >= 2000
    for stack in STACKS:
        found = [m for s, m in CASES if s == stack]
        assert len(found) >= 200, stack
        assert {m.what for m in found} == {"invalid value", "required key removed", "unknown top-level key"}
    values = {type(m.value).__name__ for _, m in CASES}
    assert {"bool", "int", "float", "str", "list", "dict"} <= values


def _refusal(stack: str, mutation) -> ConfigError:
    values = applied(CONFIGS[stack], mutation)
    run = run_program(stack_file_from_values(stack, {f"{CONFIG_NAMESPACE}:{k}": v for k, v in values.items()}), preview=True)
    assert isinstance(run.error, ConfigError), (stack, mutation, run.error)
    assert [r.type for r in run.resources] == ["pulumi:pulumi:Stack"], (stack, mutation)
    return run.error


def _assert_reported(stack: str, error: ConfigError, touched: list) -> None:
    lines = str(error).splitlines()[1:]
    assert len(lines) == len(error.problems) and all(line.startswith(f"Pulumi.{stack}.yaml: {CONFIG_NAMESPACE}") for line in lines)
    for mutation in touched:
        assert any(related(path, mutation) for path, _ in error.problems), (mutation, error.problems)
    for path, message in error.problems:
        assert message and not any(words in message for words in DEVELOPER_WORDING), (path, message)


def test_every_generated_mistake_is_refused_at_its_key_before_anything_is_registered():
    """All of them, every run (a few ms each: the program stops at the config)."""
    for stack, mutation in CASES:
        _assert_reported(stack, _refusal(stack, mutation), [mutation])


def _independent(chosen: list) -> bool:
    paths = [m.path for m in chosen]
    return all(a == b or (a[: len(b)] != b and b[: len(a)] != a) for a in paths for b in paths) and len(set(paths)) == len(paths)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(data=st.data(), stack=st.sampled_from(STACKS))
def test_several_mistakes_at_once_are_each_reported(data, stack):
    """Up to four mistakes in one file, at unrelated keys: one error listing every one of them."""
    chosen = data.draw(st.lists(st.sampled_from(BY_STACK[stack]), min_size=1, max_size=4, unique_by=lambda m: m.path))
    assume(_independent(chosen))
    values = CONFIGS[stack]
    for mutation in chosen:
        values = applied(values, mutation)
    run = run_program(stack_file_from_values(stack, {f"{CONFIG_NAMESPACE}:{k}": v for k, v in values.items()}), preview=True)
    assert isinstance(run.error, ConfigError), (chosen, run.error)
    assert [r.type for r in run.resources] == ["pulumi:pulumi:Stack"]
    _assert_reported(stack, run.error, chosen)


def test_an_unknown_key_names_the_closest_real_one():
    (mutation,) = [m for s, m in CASES if s == "dev" and m.path == (UNKNOWN_KEY,)]
    error = _refusal("dev", mutation)
    assert error.problems == [(f"{CONFIG_NAMESPACE}:{UNKNOWN_KEY}", error.problems[0][1])]
    assert error.problems[0][1].startswith("unknown key (")


@pytest.mark.parametrize(("written", "meant"), [("CLOUD", "cloud"), ("hfTOKEN", "hfToken"), ("gpuPool", "gpuPools"), ("modelpolicy", "modelPolicy")])
def test_a_key_in_the_wrong_case_is_named_as_meant(written, meant):
    """Keys are case-sensitive; a key written in another case is a typo of one key, not "one of these 15"."""
    values = dict(load_stack_file("dev").values)
    values[f"{CONFIG_NAMESPACE}:{written}"] = values.pop(f"{CONFIG_NAMESPACE}:{meant}", "x")
    with pytest.raises(ConfigError) as raised:
        stack_file_from_values("dev", values).validate()
    assert (f"{CONFIG_NAMESPACE}:{written}", f"unknown key (did you mean {meant}?)") in raised.value.problems


# --- CLI flags ---------------------------------------------------------------------------------

_NOT_A_WHOLE_NUMBER = st.sampled_from(["", "x", "1.5", "\u0663", "1e3", "0x10", "nan", "٣٢", "12abc", "99999999999"])
_NOT_A_NUMBER = st.sampled_from(["", "x", "nan", "inf", "-inf", "\u0660.\u0669", "0,9", "1e999"])
_BAD_FIT_FLAGS = st.one_of(
    st.tuples(st.sampled_from(["--tp", "--max-model-len", "--max-num-seqs", "--max-num-batched-tokens"]), _NOT_A_WHOLE_NUMBER),
    st.tuples(st.just("--gpu-memory-utilization"), _NOT_A_NUMBER | st.sampled_from(["0", "-0.5", "1.5", "7"])),
    st.tuples(st.sampled_from(["--tp"]), st.sampled_from(["0", "3", "16", "-2"])),
    st.tuples(st.sampled_from(["--max-model-len", "--max-num-seqs"]), st.sampled_from(["0", "-1"])),
    st.tuples(st.just("--dtype"), st.sampled_from(["fp8", "bf16", ""])),
    st.tuples(st.just("--kv-cache-dtype"), st.sampled_from(["int8", "fp4"])),
    st.tuples(st.just("--sampler"), st.sampled_from(["fast", ""])),
    st.tuples(st.just("--vllm-version"), st.sampled_from(["banana", "0.1", "", "v0.33"])),
    st.tuples(st.just("--gpu"), st.sampled_from(["h1000", "L4", ""])),
)


def _cli(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exit_:  # argparse's own refusals
            code = exit_.code
    return code, out.getvalue(), err.getvalue()


@settings(max_examples=200, deadline=None)
@given(flag=_BAD_FIT_FLAGS)
def test_a_bad_fit_flag_is_one_error_line_and_exit_2(flag):
    name, value = flag
    argv = ["fit", "--model", "Qwen/Qwen3-8B", *(["--gpu", "l4"] if name != "--gpu" else []), f"{name}={value}"]
    code, out, err = _cli(argv)
    assert code == 2, (argv, out, err)
    errors = [line for line in err.splitlines() if "error:" in line]
    assert len(errors) == 1 and name in errors[0], (argv, err)
    assert "Traceback" not in err and out == ""


@pytest.mark.parametrize("argv", [
    ["plan"], ["plan", "dev", "--bogus"], ["validate", "no-such-stack"], ["fit", "--gpu", "l4"], ["diff", "a"],
    ["serve", "--data-dir", "/tmp/x", "--port", "\u0668\u0660"], ["serve", "--data-dir", "/tmp/x", "--cancel-grace", "nan"],
    ["serve", "--data-dir", "/tmp/x", "--workers", "0"], ["ci-matrix", "--environment", "staging"], ["frobnicate"],
])
def test_other_bad_command_lines_exit_2_without_a_traceback(argv):
    code, out, err = _cli(argv)
    assert code == 2, (argv, out, err)
    assert "error" in err and "Traceback" not in err


_FILES = {
    "not-json.json": b"{not json",
    "a-list.json": b"[1, 2]",
    "deep.json": b"[" * 100_000 + b"]" * 100_000,
    "latin-1.json": '{"stack": "caf\xe9"}'.encode("latin-1"),
    "no-stack.json": b'{"resources": []}',
    "bad-resource.json": b'{"stack": "dev", "resources": [{"urn": 1}]}',
    "bad-errors.json": b'{"stack": "dev", "errors": [1]}',
}


@pytest.mark.parametrize("name", sorted(_FILES))
def test_a_file_that_is_not_a_plan_is_one_error_naming_it(tmp_path, name):
    """`diff` and `policy` read what an earlier job step wrote: a truncated or foreign file is one
    line naming it, for each command and as a policy config too."""
    path = tmp_path / name
    path.write_bytes(_FILES[name])
    good = tmp_path / "good"
    good.mkdir()
    (good / "x.json").write_text('{"stack": "x", "resources": []}')
    for argv in (["diff", str(path), str(path)], ["policy", str(path)], ["policy", str(good), "--config", str(path)]):
        code, out, err = _cli(argv)
        assert code == 2, (argv, out, err)
        (line,) = err.strip().splitlines()
        assert line.startswith(f"error: {path}: "), (argv, line)


@pytest.mark.parametrize("stack", ["../Pulumi.dev", "", "a" * 5000, "d\u00e9v", "dev/../dev", "dev:x"])
def test_a_name_that_is_no_stack_name_is_refused_before_any_path_is_built(stack):
    for command in ("plan", "validate", "urns"):
        code, out, err = _cli([command, stack])
        assert code == 2 and out == "", (command, stack, err)
        (line,) = err.strip().splitlines()
        assert "is not a stack name" in line and "available stacks: dev" in line and len(line) < 300, line


def test_an_output_path_that_cannot_be_written_is_one_error(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    for argv in (["plan", "dev", "--quiet", "--json", str(tmp_path)], ["plan", "dev", "--quiet", "--render", str(blocker)],
                 ["config-reference", "--write", str(tmp_path / "missing" / "x.md")]):
        code, _, err = _cli(argv)
        assert code == 2, (argv, err)
        assert err.strip().splitlines()[-1].startswith("error: ") and "Traceback" not in err, err


def test_plan_refuses_an_output_path_before_it_plans(tmp_path, monkeypatch):
    """The plan is the slow part: a path typed wrong is refused before it runs, not after."""
    import stacks.__main__ as cli

    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setattr(cli, "run_program", lambda *_, **__: pytest.fail("the plan ran"))
    cases = {
        ("--json", str(tmp_path)): f"error: {tmp_path}: is a directory",
        ("--render", str(blocker)): f"error: {blocker}: is not a directory",
        ("--json", str(blocker / "x.json")): f"error: {blocker / 'x.json'}: {blocker} is not a directory",
        ("--render", str(blocker / "sub")): f"error: {blocker / 'sub'}: {blocker} is not a directory",
    }
    for flags, expected in cases.items():
        code, out, err = _cli(["plan", "dev", *flags])
        assert (code, out, err.strip()) == (2, "", expected), flags


def test_an_architecture_file_nested_past_json_is_one_error(tmp_path):
    path = tmp_path / "config.json"
    path.write_bytes(b"[" * 100_000 + b"]" * 100_000)
    code, out, err = _cli(["fit", "--gpu", "l4", "--architecture", str(path)])
    assert code == 2 and out == "" and err.strip().startswith(f"error: {path}: "), err


def test_diff_of_two_directories_without_a_plan_is_an_error(tmp_path):
    """Not "no change": an empty PR comment would hide that the plans were never written."""
    (tmp_path / "base").mkdir()
    (tmp_path / "head").mkdir()
    code, out, err = _cli(["diff", str(tmp_path / "base"), str(tmp_path / "head")])
    assert (code, out) == (2, "") and err.strip() == f"error: neither {tmp_path / 'base'} nor {tmp_path / 'head'} holds a plan (<stack>.json, as plan --json writes)"
