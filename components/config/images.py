"""Image references, as containerd reads them: which ones live on Docker Hub (and so may come
through a cluster's mirror of it)."""

from __future__ import annotations

DOCKER_HUB_HOSTS = ("docker.io", "index.docker.io", "registry-1.docker.io")

# The reference grammar containerd and Docker parse (distribution/reference): `[host/]path[:tag][@digest]`.
# A host is a first component with a dot or a port, or `localhost`; path components are lower-case;
# a tag is at most 128 characters. Anything else fails the pull (InvalidImageName) on a GPU node,
# after the node is billed, so the config refuses it instead.
_HOST_PART = r"(?:[A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9])"
_PORT = r"(?::[0-9]+)"
_HOST = rf"(?:localhost{_PORT}?|{_HOST_PART}(?:\.{_HOST_PART})+{_PORT}?|{_HOST_PART}{_PORT}|\[[0-9A-Fa-f:]+\]{_PORT}?)"
_PATH_PART = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
TAG = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"
IMAGE_REFERENCE = rf"(?:{_HOST}/)?{_PATH_PART}(?:/{_PATH_PART})*(?::{TAG})?(?:@sha256:[0-9a-f]{{64}})?"
NAME_MAX = 255  # the name (host and path), as distribution/reference bounds it


def image_name(reference: str) -> str:
    """`host/path` without tag or digest."""
    name = reference.split("@", 1)[0]
    head, _, last = name.rpartition("/")
    return f"{head}/{last.split(':', 1)[0]}" if head else last.split(":", 1)[0]


def image_tag(reference: str) -> str | None:
    last = reference.split("@", 1)[0].rpartition("/")[2]
    return last.partition(":")[2] or None


def docker_hub_repository(reference: str) -> str | None:
    """The repository path on Docker Hub (`vllm/vllm-openai:v0.33.0`, `library/nginx:1.29`) of a
    Docker Hub image, or None for an image in another registry."""
    first, _, rest = reference.partition("/")
    if first in DOCKER_HUB_HOSTS:
        reference, (first, _, rest) = rest, rest.partition("/")
    if not rest:  # an official image: `nginx` is `library/nginx`
        return f"library/{reference}"
    if "." in first or ":" in first or first == "localhost":  # a registry host
        return None
    return reference
