"""The image catalog and `python -m stacks images --resolve`, against a local registry that speaks
the OCI distribution API with Docker Hub's anonymous-token handshake."""

from __future__ import annotations

import hashlib
import json
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml
from upstream import require_upstream

from components.catalog.images import DATA, CatalogImage, catalog_image, catalog_images, load_images
from components.config.models import ModelConfig
from components.releases import LLM_D_ROUTER_GATEWAY
from components.routing.not_found import IMAGE as NOT_FOUND_IMAGE
from components.routing.pools import EPP_IMAGE
from components.serving.prepull import PAUSE_IMAGE
from components.vllm.flags import VLLM_IMAGE, VLLM_VERSION
from stacks import image_digests
from stacks.__main__ import main
from stacks.image_digests import RegistryError, images_command, record_digests, resolve_tag

TOKEN = "pull-token-for-tests"


def _index(*platforms: tuple[str, str]) -> bytes:
    entries = [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": f"sha256:{n:064x}", "size": 1000,
                "platform": {"os": os, "architecture": arch}} for n, (os, arch) in enumerate(platforms, 1)]
    return json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": entries}).encode()


SINGLE = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                     "config": {"digest": "sha256:" + "c" * 64}, "layers": []}).encode()


class FakeRegistry(BaseHTTPRequestHandler):
    manifests: dict[str, bytes] = {}  # "/v2/<repo>/manifests/<tag>" -> body
    lie_about: set[str] = set()  # paths whose Docker-Content-Digest is wrong (a rewriting proxy)
    token_requests: list[str] = []

    def log_message(self, *args):
        pass

    def _send(self, code: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(code)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        host = f"http://127.0.0.1:{self.server.server_address[1]}"
        if self.path.startswith("/token?"):
            self.token_requests.append(self.path)
            return self._send(200, json.dumps({"token": TOKEN}).encode(), {"Content-Type": "application/json"})
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            repo = self.path.removeprefix("/v2/").split("/manifests/")[0]
            challenge = f'Bearer realm="{host}/token",service="fake.registry",scope="repository:{repo}:pull"'
            return self._send(401, b'{"errors":[{"code":"UNAUTHORIZED"}]}', {"WWW-Authenticate": challenge})
        body = self.manifests.get(self.path)
        if body is None:
            return self._send(404, b'{"errors":[{"code":"MANIFEST_UNKNOWN"}]}', {})
        digest = "sha256:" + hashlib.sha256(body if self.path not in self.lie_about else b"other").hexdigest()
        media_type = json.loads(body)["mediaType"]
        return self._send(200, body, {"Content-Type": media_type, "Docker-Content-Digest": digest})


@pytest.fixture
def registry():
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeRegistry)
    FakeRegistry.manifests, FakeRegistry.lie_about, FakeRegistry.token_requests = {}, set(), []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _image(name: str = "vllm/vllm-openai", tag: str = "v0.33.0", digest: str | None = None) -> CatalogImage:
    return CatalogImage("vllm", name, tag, digest, "tests", "tests")


def test_resolve_takes_an_anonymous_token_and_hashes_the_index(registry):
    body = _index(("linux", "amd64"), ("linux", "arm64"), ("unknown", "unknown"))
    FakeRegistry.manifests["/v2/vllm/vllm-openai/manifests/v0.33.0"] = body
    resolved = resolve_tag(_image(), base_url=registry)
    assert resolved.digest == "sha256:" + hashlib.sha256(body).hexdigest()
    assert resolved.media_type == "application/vnd.oci.image.index.v1+json"
    assert resolved.platforms == ("linux/amd64", "linux/arm64")  # the attestation entry is not a platform
    assert FakeRegistry.token_requests and "scope=repository%3Avllm%2Fvllm-openai%3Apull" in FakeRegistry.token_requests[0]


def test_docker_hub_official_images_live_under_library(registry):
    FakeRegistry.manifests["/v2/library/nginx/manifests/1.29"] = SINGLE
    resolved = resolve_tag(_image("nginx", "1.29"), base_url=registry)
    assert resolved.platforms == () and resolved.digest == "sha256:" + hashlib.sha256(SINGLE).hexdigest()
    assert _image("docker.io/nginx", "1").repository == "library/nginx"
    assert _image("ghcr.io/llm-d/epp").registry == "ghcr.io" and _image("ghcr.io/llm-d/epp").repository == "llm-d/epp"
    assert image_digests.registry_base_url("docker.io") == "https://registry-1.docker.io"


def test_a_manifest_that_does_not_hash_to_the_announced_digest_is_refused(registry):
    path = "/v2/vllm/vllm-openai/manifests/v0.33.0"
    FakeRegistry.manifests[path], FakeRegistry.lie_about = _index(("linux", "amd64")), {path}
    with pytest.raises(RegistryError, match="announces sha256:.*hashes to sha256:"):
        resolve_tag(_image(), base_url=registry)


def test_a_missing_tag_and_an_unreachable_registry_are_errors_not_tracebacks(registry):
    with pytest.raises(RegistryError, match="no such tag or repository"):
        resolve_tag(_image(tag="v9.9.9"), base_url=registry)
    with pytest.raises(RegistryError, match="127.0.0.1:9"):
        resolve_tag(_image(), base_url="http://127.0.0.1:9", timeout=2)


def test_record_digests_changes_only_the_digest_lines():
    text = DATA.read_text()
    digest = "sha256:" + "d" * 64
    before = catalog_images()
    written = record_digests(text, {"vllm": digest, "pause": digest})
    changed = [(a, b) for a, b in zip(text.splitlines(), written.splitlines(), strict=True) if a != b]
    assert changed == [(f"    digest: {before[key].digest or 'null'}", f"    digest: {digest}") for key in ("vllm", "pause")]
    entries = yaml.safe_load(written)["images"]
    assert entries["vllm"]["digest"] == entries["pause"]["digest"] == digest
    assert all(entries[key]["digest"] == before[key].digest for key in before if key not in ("vllm", "pause"))
    with pytest.raises(KeyError, match="no-such-image"):
        record_digests(text, {"no-such-image": digest})


def _resolver_from(registry: str):
    return lambda image: resolve_tag(image, base_url=registry)


def _serve_every_catalog_image(platforms=(("linux", "amd64"), ("linux", "arm64"))) -> dict[str, bytes]:
    bodies = {}
    for image in catalog_images().values():
        bodies[image.key] = _index(*platforms)
        FakeRegistry.manifests[f"/v2/{image.repository}/manifests/{image.tag}"] = bodies[image.key]
    return bodies


def test_images_resolve_write_records_new_digests_and_reports_moved_ones(registry, tmp_path, capsys):
    catalog = tmp_path / "images.yaml"
    # the vLLM image unrecorded, every other one recorded at a digest its tag no longer points at
    stale = "sha256:" + "f" * 64
    catalog.write_text(record_digests(DATA.read_text(), {key: stale for key in catalog_images()}).replace(f"digest: {stale}", "digest: null", 1))
    assert [key for key, image in load_images(catalog).items() if not image.pinned] == ["vllm"]
    bodies = _serve_every_catalog_image()
    assert images_command(resolve=True, write=True, as_json=True, resolver=_resolver_from(registry), catalog=catalog) == 0
    rows = {row["key"]: row for row in json.loads(capsys.readouterr().out)}
    assert rows.pop("vllm")["status"] == "new"
    assert rows and all(row["status"] == "moved" and row["digest"] == stale for row in rows.values())  # reported, and moved on --write
    recorded = load_images(catalog)
    for key, body in bodies.items():
        assert recorded[key].digest == "sha256:" + hashlib.sha256(body).hexdigest()
        assert recorded[key].reference == f"{recorded[key].name}:{recorded[key].tag}@{recorded[key].digest}"
    # a second run finds nothing to change
    assert images_command(resolve=True, write=True, as_json=False, resolver=_resolver_from(registry), catalog=catalog) == 0
    assert all(line.split()[2] == "unchanged" for line in capsys.readouterr().out.splitlines())


def test_an_index_without_amd64_is_not_recorded(registry, tmp_path, capsys):
    catalog = tmp_path / "images.yaml"
    shutil.copy(DATA, catalog)
    _serve_every_catalog_image(platforms=(("linux", "arm64"),))
    assert images_command(resolve=True, write=True, as_json=False, resolver=_resolver_from(registry), catalog=catalog) == 1
    assert "no linux/amd64 image" in capsys.readouterr().err
    assert catalog.read_text() == DATA.read_text()


def test_the_cli_lists_the_catalog_and_refuses_write_without_resolve(capsys):
    assert main(["images", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [row["key"] for row in rows] == list(catalog_images())
    assert {row["status"] for row in rows} <= {"pinned", "tag only"}
    with pytest.raises(SystemExit) as exit_:
        main(["images", "--write"])
    assert exit_.value.code == 2 and "pass both" in capsys.readouterr().err


def test_pinned_references_carry_tag_and_digest(tmp_path):
    digest = "sha256:" + "e" * 64
    image = CatalogImage("epp", "ghcr.io/llm-d/llm-d-router-endpoint-picker", "v0.10.0", digest, "tests", "tests")
    assert image.reference == f"ghcr.io/llm-d/llm-d-router-endpoint-picker:v0.10.0@{digest}"
    values = image.chart_values()
    assert f"{values['registry']}/{values['repository']}:{values['tag']}" == image.reference  # how the charts' templates join them
    bad = tmp_path / "images.yaml"
    bad.write_text("images:\n  bad: {name: x, tag: '1', digest: 'sha256:short', used_by: t, source: s}\n")
    with pytest.raises(ValueError, match="images.bad.digest"):
        load_images(bad)


def test_the_catalog_agrees_with_what_it_pins():
    assert catalog_image("vllm").tag == f"v{VLLM_VERSION}"
    assert catalog_image("endpoint-picker").tag == LLM_D_ROUTER_GATEWAY.version
    chart_image = yaml.safe_load((require_upstream() / "routing/charts/body-based-routing/values.yaml").read_text())["bbr"]["image"]
    assert catalog_image("body-based-routing").tag == chart_image["tag"]
    assert catalog_image("body-based-routing").name == f"{chart_image['registry']}/{chart_image['repository']}"
    for image in catalog_images().values():
        assert image.used_by and image.source


def test_the_components_take_their_images_from_the_catalog():
    assert ModelConfig.model_fields["image"].default == VLLM_IMAGE == catalog_image("vllm").reference
    assert NOT_FOUND_IMAGE == catalog_image("not-found").reference
    assert PAUSE_IMAGE == catalog_image("pause").reference and catalog_image("pause").pinned
    assert EPP_IMAGE == catalog_image("endpoint-picker").chart_values()
