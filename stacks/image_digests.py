"""`python -m stacks images`: the platform's own images, and the digests their tags point at.

The catalog (`components/catalog/data/images.yaml`) names each image by tag and records its
digest once resolved. `--resolve` asks each registry over the OCI distribution API what the tag
points at now. It fetches the manifest only (a few KB, no layers), anonymously, with the token a
public registry hands out for pulling. The digest is the sha256 of the bytes received, checked
against the registry's `Docker-Content-Digest`, so a proxy that rewrote the manifest is caught,
not recorded. `--write` records new or moved digests in the catalog and leaves the rest of the
file (comments and sources) as it is.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from components.catalog.images import DATA, DOCKER_HUB, CatalogImage, load_images

# An index first: its digest covers every platform, so amd64 GPU nodes and arm64 system nodes
# pull the same release.
MANIFEST_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)
INDEX_TYPES = MANIFEST_TYPES[:2]
REQUIRED_PLATFORM = "linux/amd64"  # every cloud's GPU nodes
_CHALLENGE_FIELD = re.compile(r'(\w+)="([^"]*)"')


class RegistryError(Exception):
    """A registry that could not be reached, refused, or answered something that is not a manifest."""


@dataclass(frozen=True)
class ResolvedTag:
    digest: str
    media_type: str
    platforms: tuple[str, ...]  # os/architecture[/variant] of an index's images; () for a single image


def registry_base_url(registry: str) -> str:
    """Where a registry's API lives: Docker Hub's is not at docker.io."""
    return "https://registry-1.docker.io" if registry == DOCKER_HUB else f"https://{registry}"


def _bearer_token(challenge: str, repository: str, timeout: float) -> str:
    """An anonymous pull token from the realm the registry's 401 names."""
    scheme, _, params = challenge.partition(" ")
    if scheme.lower() != "bearer":
        raise RegistryError(f"asks for {scheme} authentication; only anonymous pulls are supported")
    fields = dict(_CHALLENGE_FIELD.findall(params))
    if "realm" not in fields:
        raise RegistryError(f"its challenge names no token realm: {challenge!r}")
    query = {"service": fields.get("service", ""), "scope": fields.get("scope", f"repository:{repository}:pull")}
    url = f"{fields['realm']}?{urllib.parse.urlencode({k: v for k, v in query.items() if v})}"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            body = json.load(response)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise RegistryError(f"no pull token from {fields['realm']}: {exc}") from exc
    token = body.get("token") or body.get("access_token")
    if not isinstance(token, str) or not token:
        raise RegistryError(f"the token endpoint {fields['realm']} answered no token")
    return token


def _get_manifest(url: str, token: str | None, timeout: float) -> tuple[bytes, Mapping[str, str]]:
    headers = {"Accept": ", ".join(MANIFEST_TYPES)}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout) as response:
        return response.read(), response.headers


def _platforms(manifest: Mapping) -> tuple[str, ...]:
    found = []
    for entry in manifest.get("manifests", []):
        platform = entry.get("platform") or {}
        if platform.get("os", "unknown") == "unknown":  # build attestations, not images
            continue
        found.append("/".join(p for p in (platform.get("os"), platform.get("architecture"), platform.get("variant")) if p))
    return tuple(found)


def resolve_tag(image: CatalogImage, base_url: str | None = None, timeout: float = 30.0) -> ResolvedTag:
    """The digest `image.tag` points at now. Raises RegistryError, never a traceback's worth of
    urllib: the CLI prints it against the image."""
    base = (base_url or registry_base_url(image.registry)).rstrip("/")
    url = f"{base}/v2/{image.repository}/manifests/{urllib.parse.quote(image.tag)}"
    try:
        try:
            body, headers = _get_manifest(url, None, timeout)
        except urllib.error.HTTPError as exc:
            if exc.code != 401 or "WWW-Authenticate" not in exc.headers:
                raise
            body, headers = _get_manifest(url, _bearer_token(exc.headers["WWW-Authenticate"], image.repository, timeout), timeout)
    except urllib.error.HTTPError as exc:
        what = "no such tag or repository" if exc.code == 404 else f"HTTP {exc.code} {exc.reason}"
        raise RegistryError(f"{url}: {what}") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise RegistryError(f"{url}: {getattr(exc, 'reason', exc)}") from exc
    digest = f"sha256:{hashlib.sha256(body).hexdigest()}"
    announced = headers.get("Docker-Content-Digest")
    if announced and announced != digest:
        raise RegistryError(f"{url}: the registry announces {announced}, but the manifest received hashes to {digest}")
    try:
        manifest = json.loads(body)
    except ValueError as exc:
        raise RegistryError(f"{url}: the answer is not a JSON manifest") from exc
    media_type = str(manifest.get("mediaType") or headers.get("Content-Type", "")).split(";")[0]
    if media_type not in MANIFEST_TYPES:
        raise RegistryError(f"{url}: {media_type or 'no media type'} is not an image manifest")
    return ResolvedTag(digest, media_type, _platforms(manifest) if media_type in INDEX_TYPES else ())


def record_digests(text: str, digests: Mapping[str, str]) -> str:
    """The catalog's text with `images.<key>.digest` set for each key, and nothing else changed."""
    lines = text.splitlines(keepends=True)
    pending = dict(digests)
    current = None
    for i, line in enumerate(lines):
        block = re.match(r"  ([\w-]+):\s*$", line)
        if block:
            current = block.group(1)
        elif current in pending and re.match(r"    digest:", line):
            lines[i] = f"    digest: {pending.pop(current)}\n"
    if pending:
        raise KeyError(f"no digest line for {', '.join(sorted(pending))} in the catalog")
    return "".join(lines)


@dataclass(frozen=True)
class Outcome:
    image: CatalogImage
    resolved: ResolvedTag | None = None
    error: str | None = None

    @property
    def status(self) -> str:
        if self.error:
            return "unresolved"
        if self.resolved is None:
            return "pinned" if self.image.pinned else "tag only"
        if self.image.digest == self.resolved.digest:
            return "unchanged"
        return "new" if self.image.digest is None else "moved"

    def as_json(self) -> dict:
        row = {"key": self.image.key, "name": self.image.name, "tag": self.image.tag, "digest": self.image.digest,
               "reference": self.image.reference, "usedBy": self.image.used_by, "status": self.status}
        if self.resolved:
            row |= {"resolvedDigest": self.resolved.digest, "mediaType": self.resolved.media_type, "platforms": list(self.resolved.platforms)}
        if self.error:
            row["error"] = self.error
        return row

    def line(self) -> str:
        text = f"{self.image.key:<20} {self.image.name + ':' + self.image.tag:<64} {self.status}"
        if self.resolved:
            text += f"  {self.resolved.digest}"
            if self.resolved.platforms:
                text += f"  ({', '.join(self.resolved.platforms)})"
            if self.status == "moved":
                text += f"  (recorded {self.image.digest})"
        elif self.image.digest and not self.error:
            text += f"  {self.image.digest}"
        return text  # an error goes to stderr, once


def _platform_problem(resolved: ResolvedTag) -> str | None:
    if resolved.platforms and REQUIRED_PLATFORM not in resolved.platforms:
        return f"the index has no {REQUIRED_PLATFORM} image ({', '.join(resolved.platforms)}); the GPU nodes could not run it"
    return None


def images_command(resolve: bool, write: bool, as_json: bool, resolver: Callable[[CatalogImage], ResolvedTag] = resolve_tag,
                   catalog: Path = DATA) -> int:
    """0 when every image is listed (or resolved); 1 when a registry could not answer for one."""
    outcomes = []
    for image in load_images(catalog).values():
        if not resolve:
            outcomes.append(Outcome(image))
            continue
        try:
            resolved = resolver(image)
        except RegistryError as exc:
            outcomes.append(Outcome(image, error=str(exc)))
            continue
        problem = _platform_problem(resolved)
        outcomes.append(Outcome(image, resolved, problem))
    if as_json:
        json.dump([o.as_json() for o in outcomes], sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        sys.stdout.writelines(f"{o.line()}\n" for o in outcomes)
    changed = {o.image.key: o.resolved.digest for o in outcomes if o.resolved and o.status in ("new", "moved")}
    if write and changed:
        catalog.write_text(record_digests(catalog.read_text(), changed))
        print(f"recorded {len(changed)} digest(s) in {catalog}: {', '.join(sorted(changed))}", file=sys.stderr)
    failed = [o for o in outcomes if o.error]
    for outcome in failed:
        print(f"error: {outcome.image.key}: {outcome.error}", file=sys.stderr)
    return 1 if failed else 0
