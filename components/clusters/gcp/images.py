"""The vLLM image on GKE, streamed (scaleOut.fastImagePull).

GKE's image streaming mounts an image's layers over the network and fetches the bytes a container
reads, so a ~10 GB vLLM image starts in seconds instead of a four-minute pull. It streams images
held in Artifact Registry, and the vLLM image lives on Docker Hub. So the stack keeps an Artifact
Registry remote repository of Docker Hub in its region: the first pull of a tag fills it (the
download Job on the system pool, with the same image, pulls first), and every GPU node streams
from it afterwards. The repository pulls from Docker Hub anonymously, once per tag.

Needs the Artifact Registry and Container File System APIs enabled in the project.
"""

from __future__ import annotations

import pulumi
import pulumi_gcp as gcp

REPOSITORY_ID = "docker-hub"


def mirror_prefix(project: str, region: str) -> str:
    """The image path prefix that stands in for Docker Hub (`vllm/vllm-openai:v…` -> `<prefix>/vllm/vllm-openai:v…`)."""
    return f"{region}-docker.pkg.dev/{project}/{REPOSITORY_ID}"


class DockerHubMirror(pulumi.ComponentResource):
    """An Artifact Registry remote repository of Docker Hub, readable by the cluster's nodes."""

    def __init__(self, name: str, project: str, region: str, node_account: pulumi.Input[str], labels: dict[str, str], opts: pulumi.ResourceOptions | None = None):
        super().__init__("llm-platform:cluster:DockerHubMirror", name, None, opts)
        self.repository = gcp.artifactregistry.Repository(
            f"{name}-repository",
            project=project,
            location=region,
            repository_id=REPOSITORY_ID,
            format="DOCKER",
            mode="REMOTE_REPOSITORY",
            description="Docker Hub, cached in-region for GKE image streaming (llm-platform)",
            remote_repository_config=gcp.artifactregistry.RepositoryRemoteRepositoryConfigArgs(
                description="Docker Hub",
                docker_repository=gcp.artifactregistry.RepositoryRemoteRepositoryConfigDockerRepositoryArgs(public_repository="DOCKER_HUB"),
            ),
            labels=labels,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.reader = gcp.artifactregistry.RepositoryIamMember(
            f"{name}-nodes-reader",
            project=project,
            location=region,
            repository=self.repository.name,
            role="roles/artifactregistry.reader",
            member=pulumi.Output.from_input(node_account).apply(lambda email: f"serviceAccount:{email}"),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.prefix = mirror_prefix(project, region)
        self.register_outputs({"repository": self.repository.id, "prefix": self.prefix})
