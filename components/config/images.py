"""Image references, as containerd reads them: which ones live on Docker Hub (and so may come
through a cluster's mirror of it)."""

from __future__ import annotations

DOCKER_HUB_HOSTS = ("docker.io", "index.docker.io", "registry-1.docker.io")


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
