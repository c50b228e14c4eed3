"""Stack files are read as the Pulumi CLI reads them (go-yaml v3, its key syntax, its limits), and
whatever a file holds ends in one error line or a warning, never a traceback (issue 21)."""

from __future__ import annotations

import math

import pytest
import yaml
from conftest import PROJECT_DIR, dev_config_values

from components.config.stack import ConfigError
from stacks.__main__ import main
from stacks.go_yaml import GoYamlLoader, go_plain_scalar
from stacks.offline import run_program
from stacks.stack_files import load_stack_file, stack_file_from_values

NS = "llm-platform"
DEV = (PROJECT_DIR / "Pulumi.dev.yaml").read_text()


# go-yaml v3 (resolve.go) into an untyped value, and why each case matters
@pytest.mark.parametrize(
    "plain, decoded",
    [
        ("yes", "yes"), ("on", "on"), ("off", "off"), ("y", "y"),  # YAML 1.1 booleans are text in v3
        ("true", True), ("True", True), ("FALSE", False), ("tRUE", "tRUE"),
        ("~", None), ("null", None), ("", None),
        ("1:30", "1:30"),  # no base-60 integers
        ("2024-01-01", "2024-01-01"), ("2001-13-45", "2001-13-45"),  # dates stay text (and bad ones never raise)
        ("1.2.3", "1.2.3"), ("1.30", 1.3),
        ("0755", 0o755), ("0o17", 15), ("0x1F", 31), ("0b101", 5), ("-0x10", -16), ("1_000", 1000),
        ("09", 9.0),  # not octal: strconv then reads it as a float
        ("1e3", 1000.0), (".5", 0.5), ("+5", 5), ("-1", -1),
        ("9223372036854775808", 2**63), ("-9223372036854775809", -9.223372036854776e18), ("18446744073709551616", 1.8446744073709552e19),
        ("1e999", "1e999"), ("9" * 5000, "9" * 5000),  # overflow is text, not inf or a 5000-digit int
    ],
)
def test_plain_scalars_decode_as_go_yaml_v3_decodes_them(plain, decoded):
    assert go_plain_scalar(plain) == decoded
    assert type(go_plain_scalar(plain)) is type(decoded)


def test_special_floats_quoted_text_and_merge_keys():
    assert math.isinf(go_plain_scalar(".inf")) and go_plain_scalar("-.Inf") == -math.inf and math.isnan(go_plain_scalar(".nan"))
    doc = yaml.load("a: 'yes'\nb: \"0755\"\nbase: &b {x: 1}\nc:\n  <<: *b\n  y: 2\nd: !!set {p, q}\n", Loader=GoYamlLoader)  # noqa: S506
    assert doc == {"a": "yes", "b": "0755", "base": {"x": 1}, "c": {"x": 1, "y": 2}, "d": {"p": None, "q": None}}


def _validate(tmp_path, capsys, text: str | bytes, stack: str = "probe") -> tuple[int, str, str]:
    path = tmp_path / f"Pulumi.{stack}.yaml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    code = main(["validate", stack, "--stack-dir", str(tmp_path)])
    out, err = capsys.readouterr()
    return code, out, err


def _laughs(levels: int, fanout: int) -> str:
    """Anchors in a key of another namespace, the expansion under a key the config reads."""
    lines = ["  x-anchors:a0: &a0 [" + ", ".join(["lol"] * fanout) + "]"]
    lines += [f"  x-anchors:a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * fanout) + "]" for i in range(1, levels)]
    return DEV.replace("  llm-platform:region: us-west-2\n", "  llm-platform:region: us-west-2\n" + "\n".join(lines) + f"\n  llm-platform:prices: {{laughs: *a{levels - 1}}}\n")


@pytest.mark.parametrize(
    "text, error",
    [
        (DEV.replace("  llm-platform:region: us-west-2", "  llm-platform:region: us-west-2\n  llm-platform:deep: " + "[" * 3000 + "]" * 3000), "nested too deeply to read"),
        (_laughs(4, 10), "document contains excessive aliasing"),
        (_laughs(9, 9), "document contains excessive aliasing"),  # a billion laughs: refused at once
        (DEV.replace("  llm-platform:region: us-west-2", "  llm-platform:region: us-west-2\n  llm-platform:prices: &loop {again: *loop}"), "anchor value contains itself"),
        (DEV.replace("  llm-platform:region: us-west-2", "  region: us-west-2"), "'region' has no namespace: Pulumi reads only `<namespace>:<name>` keys and refuses the file; did you mean llm-platform:region?"),
        (DEV.replace("  llm-platform:region: us-west-2", "  llm-platform:region:west: us-west-2"), "is not a config key"),
        (DEV.replace("name: llm-dev", "name: !!int llm"), "a value its tag cannot hold"),
        (DEV.replace("name: llm-dev", "name: !!timestamp 2001-13-45"), "a value its tag cannot hold"),
        (DEV.replace("name: llm-dev", "name: !!python/object/apply:os.system ['true']"), "line 10, column 11: not valid YAML: could not determine a constructor"),
        (DEV.replace("    name: llm-dev", "\tname: llm-dev"), "line 10, column 1: not valid YAML: found character '\\t' that cannot start any token"),
    ],
    ids=["deep", "laughs", "billion-laughs", "cycle", "no-namespace", "two-colons", "bad-int-tag", "bad-timestamp", "python-tag", "tab"],
)
def test_files_the_cli_refuses_are_one_error_line(tmp_path, capsys, text, error):
    code, out, err = _validate(tmp_path, capsys, text)
    assert code == 2 and out == ""
    (line,) = err.strip().splitlines()
    assert line.startswith("error: Pulumi.probe.yaml: ") and error in line, err


def test_aliases_within_go_yamls_bound_are_read(tmp_path, capsys):
    """1,000 laughs is below go-yaml's ratio: the file is read, and the config is what is wrong."""
    code, _, err = _validate(tmp_path, capsys, _laughs(3, 10))
    assert code == 2 and "aliasing" not in err
    assert "llm-platform:prices.laughs: must be a map with keys such as onDemand" in err


@pytest.mark.parametrize(
    "old, new, key, message",
    [
        ("    maxSize: 3\n  llm-platform:gpuPools", "    maxSize: 1:30\n  llm-platform:gpuPools", "systemPool.maxSize", "must be a whole number (got '1:30')"),
        ('kubernetesVersion: "1.35"', "kubernetesVersion: 2024-01-01", "cluster.kubernetesVersion", "'2024-01-01' is not a Kubernetes minor version"),
        ("    maxSize: 3\n  llm-platform:gpuPools", "    maxSize: " + "9" * 5000 + "\n  llm-platform:gpuPools", "systemPool.maxSize", "must be a whole number of a sensible size"),
        ("    name: llm-dev", "    1: x\n    name: llm-dev", "cluster[1]", "keys must be text"),
        ("availabilityZones: [us-west-2a, us-west-2b]", "availabilityZones: !!set {us-west-2a, us-west-2b}", "cluster.network.availabilityZones", "must be a list"),
    ],
    ids=["base-60", "date", "5000-digits", "number-key", "set"],
)
def test_what_go_yaml_reads_is_what_is_validated(tmp_path, capsys, old, new, key, message):
    assert old in DEV
    code, _, err = _validate(tmp_path, capsys, DEV.replace(old, new, 1))
    assert code == 2 and "Traceback" not in err
    assert f"Pulumi.probe.yaml: {NS}:{key}: {message}" in err, err


def test_octal_and_underscored_numbers_are_numbers(tmp_path, capsys):
    text = DEV.replace("    maxSize: 3\n  llm-platform:gpuPools", "    maxSize: 0o3\n  llm-platform:gpuPools", 1)
    assert _validate(tmp_path, capsys, text)[0] == 0
    assert load_stack_file("probe", tmp_path).namespace_values()["systemPool"]["maxSize"] == 3


def test_a_top_level_value_is_the_text_written(tmp_path):
    """The CLI reads each key's value into a string first: `1.10` stays "1.10", `yes` stays "yes"."""
    (tmp_path / "Pulumi.probe.yaml").write_text(DEV.replace("  llm-platform:region: us-west-2", "  llm-platform:region: 1.10"))
    assert load_stack_file("probe", tmp_path).values[f"{NS}:region"] == "1.10"
    with pytest.raises(ConfigError) as raised:
        load_stack_file("probe", tmp_path).validate()
    assert [(k, m.split(" is ")[0]) for k, m in raised.value.problems] == [(f"{NS}:region", "'1.10'")]


def test_keys_of_other_packages_are_a_warning_in_the_cli_and_the_program(tmp_path, capsys, monkeypatch):
    assert "\n  llm-platform:tags:\n" in DEV
    text = DEV.replace("  llm-platform:region: us-west-2", "  llm-platform:region: us-west-2\n  aws:region: us-east-1")
    text = text.replace("\n  llm-platform:tags:\n", "\n  llm-platform:config:tags:\n")  # the legacy `<ns>:config:<key>` spelling
    code, out, err = _validate(tmp_path, capsys, text)
    assert code == 0, err
    assert "warning: Pulumi.probe.yaml: aws:region: ignored: this program reads only llm-platform: keys" in out + err
    stack_file = load_stack_file("probe", tmp_path)
    assert stack_file.namespace_values()["tags"] == load_stack_file("dev").namespace_values()["tags"]
    warned: list[str] = []
    monkeypatch.setattr("stacks.compose.pulumi.log.warn", lambda message, *a, **k: warned.append(message))
    run = run_program(stack_file, preview=True)
    assert run.error is None, run.error
    assert any(m.startswith("Pulumi.probe.yaml: aws:region: ignored") for m in warned), warned


def test_two_spellings_of_one_key_are_refused(tmp_path, capsys):
    text = DEV.replace("  llm-platform:region: us-west-2", "  llm-platform:region: us-west-2\n  llm-platform:config:region: us-east-1")
    code, _, err = _validate(tmp_path, capsys, text)
    assert code == 2 and "'llm-platform:config:region' is llm-platform:region given a second time" in err


@pytest.mark.parametrize("key, value", [("region", {"secure": "v1:AAAA"}), ("tags", {"team": {"secure": "v1:AAAA"}})])
def test_only_credentials_may_be_encrypted(key, value):
    """Offline an encrypted value is a placeholder; in the program it is used in plain text. Either
    way it is a mistake, reported alone at its key (what would follow from the placeholder misleads)."""
    values = dev_config_values()
    values[f"{NS}:{key}"] = value
    stack_file = stack_file_from_values("probe", values)
    assert f"{NS}:{key}" in stack_file.secret_keys
    with pytest.raises(ConfigError) as raised:
        stack_file.validate()
    assert [k for k, _ in raised.value.problems] == [f"{NS}:{key}"]
    assert "stored encrypted, but it is not a credential (only hfToken is)" in raised.value.problems[0][1]
    run = run_program(stack_file, preview=True)
    assert isinstance(run.error, ConfigError) and [r.type for r in run.resources] == ["pulumi:pulumi:Stack"]


@pytest.mark.parametrize("key", ["gpuPools", "models"])
def test_a_list_of_thousands_is_one_error(key):
    """10,000 copies of a pool or a model is a generated mistake: one line, not 10,000 × its problems."""
    values = dev_config_values()
    values[f"{NS}:{key}"] = [{}] * 10_000
    with pytest.raises(ConfigError) as raised:
        stack_file_from_values("probe", values).validate()
    assert raised.value.problems == [(f"{NS}:{key}", "must list at most 50 items (it has 10000)")]


_RAW = {
    "binary": DEV.replace("name: llm-dev", "name: !!binary bGxtLWRldg=="),  # go-yaml: the decoded text
    "timestamp": DEV.replace('kubernetesVersion: "1.35"', "kubernetesVersion: !!timestamp 2001-12-14"),
    "brackets": DEV.replace("  llm-platform:region: us-west-2", '  llm-platform:region: "[oops"'),  # text that starts like JSON
    "json-text": DEV.replace("  llm-platform:region: us-west-2", '  llm-platform:region: "{\\"a\\": 1}"'),
    "number": DEV.replace("  llm-platform:region: us-west-2", "  llm-platform:region: 5"),
    "yes": DEV.replace("allowScaleToZero: true", "allowScaleToZero: yes"),
    "set": DEV.replace("availabilityZones: [us-west-2a, us-west-2b]", "availabilityZones: !!set {us-west-2a, us-west-2b}"),
    "omap": DEV.replace("name: llm-dev", "name: !!omap [a: 1]"),
    "merge": DEV.replace("    name: llm-dev", "    <<: {name: other}\n    name: llm-dev"),
    "encrypted": DEV.replace("  llm-platform:region: us-west-2", "  llm-platform:region:\n    secure: v1:AAAA"),
}


@pytest.mark.parametrize("name", sorted(_RAW))
def test_the_program_and_validate_agree_on_what_a_file_holds(tmp_path, capsys, name):
    """What `validate` accepts the program runs; what it refuses the program refuses at the same
    keys, before registering anything (the program reads the engine's JSON, not the YAML)."""
    assert _RAW[name] != DEV, name
    code, _, err = _validate(tmp_path, capsys, _RAW[name])
    assert code in (0, 2) and "Traceback" not in err
    run = run_program(load_stack_file("probe", tmp_path), preview=True)
    if code == 0:
        assert run.error is None, (name, run.error)
    else:
        assert isinstance(run.error, ConfigError), (name, run.error)
        assert [r.type for r in run.resources] == ["pulumi:pulumi:Stack"]
        assert {f"{k}" for k, _ in run.error.problems} <= {line.split(": ")[1] for line in err.strip().splitlines()[1:]}, (name, err)
