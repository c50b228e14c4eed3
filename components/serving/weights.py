"""Model weights on the shared volume: the pre-download Job that fills it.

One Job per model and revision downloads a Hugging Face snapshot into the model's ReadWriteMany
volume; vLLM pods only read it (their init container waits for the completion marker). So a
scale-out from 1 to 20 replicas reads EFS instead of pulling the same 16-140 GB from the hub 20
times, and the hub's rate limits or an outage cannot stop a scale-up.

The Job runs on the CPU system pool (a GPU node would be billed while it downloads) with the
model's own vLLM image, which already carries `huggingface_hub` at the version vLLM was released
with: nothing is installed at run time, and there is one image to mirror and pull, not two. Where
the cluster mirrors Docker Hub (GKE), the Job's pull is the one that fills the mirror, before any GPU
node asks for the image.
"""

from __future__ import annotations

import hashlib

import pulumi_kubernetes as k8s

from ..config.models import ModelConfig
from ..config.types import duration_seconds
from .pod import COMPLETE_MARKER, WEIGHTS_MOUNT, locked_down, model_pod_security, weights_dir

HF_TOKEN_KEY = "HF_TOKEN"
DOWNLOAD_HOME = "/tmp"
DOWNLOAD_SCRATCH = "16Gi"

# Idempotent and resumable: a finished snapshot (marker present) exits at once; an interrupted one
# resumes where it stopped (huggingface_hub keeps partial files under <dir>/.cache). The marker,
# written last, records the commit the revision resolved to.
DOWNLOAD_SCRIPT = f"""
import os, pathlib, sys
import huggingface_hub as hub

repo, revision = os.environ["MODEL_ID"], os.environ["MODEL_REVISION"]
target = pathlib.Path(os.environ["TARGET_DIR"])
marker = target / "{COMPLETE_MARKER}"
token = os.environ.get("{HF_TOKEN_KEY}") or None
if marker.exists():
    print(f"{{repo}}@{{revision}} already complete (commit {{marker.read_text().strip()}})")
    sys.exit(0)
info = hub.model_info(repo, revision=revision, token=token, files_metadata=False)
files = [s.rfilename for s in info.siblings or []]
# vLLM loads safetensors when present: skip the duplicate PyTorch checkpoints and the original/
# consolidated weights some repos also ship (they double the download).
ignore = ["original/*"]
if any(f.endswith(".safetensors") for f in files):
    ignore += ["*.bin", "*.pt", "*.pth"]
target.mkdir(parents=True, exist_ok=True)
hub.snapshot_download(repo, revision=info.sha, local_dir=target, token=token, ignore_patterns=ignore, max_workers=8)
marker.write_text(info.sha + "\\n")
print(f"{{repo}}@{{revision}} complete (commit {{info.sha}})")
"""


def download_pod_labels(model: ModelConfig) -> dict[str, str]:
    return {"app.kubernetes.io/name": "model-weights", "app.kubernetes.io/instance": model.name}


def download_job_name(model: ModelConfig) -> str:
    """Changes whenever what the Job would download changes, so Pulumi replaces the (immutable)
    Job by creating the new one first; the old revision's files stay for a rollback."""
    digest = hashlib.sha256(
        "\n".join([model.model, model.revision, model.image, DOWNLOAD_SCRIPT]).encode()
    ).hexdigest()[:8]
    return f"{model.name}-download-{digest}"


def download_job_spec(
    model: ModelConfig,
    image: str,
    claim_name: str,
    service_account: str,
    token_secret: str | None,
    system_node_selector: dict[str, str],
    weights_fs_group: bool = False,
) -> k8s.batch.v1.JobSpecArgs:
    env = [
        k8s.core.v1.EnvVarArgs(name="MODEL_ID", value=model.model),
        k8s.core.v1.EnvVarArgs(name="MODEL_REVISION", value=model.revision),
        k8s.core.v1.EnvVarArgs(name="TARGET_DIR", value=weights_dir(model)),
        k8s.core.v1.EnvVarArgs(name="HOME", value=DOWNLOAD_HOME),
        k8s.core.v1.EnvVarArgs(name="HF_HUB_DISABLE_TELEMETRY", value="1"),
    ]
    if token_secret is not None:
        env.append(
            k8s.core.v1.EnvVarArgs(
                name=HF_TOKEN_KEY,
                value_from=k8s.core.v1.EnvVarSourceArgs(
                    secret_key_ref=k8s.core.v1.SecretKeySelectorArgs(name=token_secret, key=HF_TOKEN_KEY)
                ),
            )
        )
    return k8s.batch.v1.JobSpecArgs(
        # Retries resume the partial download; the deadline bounds a hub outage.
        backoff_limit=6,
        active_deadline_seconds=duration_seconds(model.download_timeout),
        template=k8s.core.v1.PodTemplateSpecArgs(
            metadata=k8s.meta.v1.ObjectMetaArgs(labels=download_pod_labels(model)),
            spec=k8s.core.v1.PodSpecArgs(
                restart_policy="OnFailure",
                service_account_name=service_account,
                automount_service_account_token=False,
                node_selector=system_node_selector,
                security_context=model_pod_security(weights_writer=weights_fs_group),
                containers=[
                    k8s.core.v1.ContainerArgs(
                        name="download",
                        image=image,
                        command=["python3", "-c", DOWNLOAD_SCRIPT],
                        env=env,
                        resources=k8s.core.v1.ResourceRequirementsArgs(
                            requests={"cpu": "500m", "memory": "1Gi"}, limits={"cpu": "2", "memory": "4Gi"}
                        ),
                        security_context=locked_down(),
                        volume_mounts=[
                            k8s.core.v1.VolumeMountArgs(name="weights", mount_path=WEIGHTS_MOUNT),
                            k8s.core.v1.VolumeMountArgs(name="tmp", mount_path=DOWNLOAD_HOME),
                        ],
                    )
                ],
                volumes=[
                    k8s.core.v1.VolumeArgs(
                        name="weights",
                        persistent_volume_claim=k8s.core.v1.PersistentVolumeClaimVolumeSourceArgs(claim_name=claim_name),
                    ),
                    # HOME: huggingface_hub's token and Xet chunk caches (the chunk cache may grow to
                    # 10 GB by default), on the system node's disk rather than a read-only root.
                    k8s.core.v1.VolumeArgs(name="tmp", empty_dir=k8s.core.v1.EmptyDirVolumeSourceArgs(size_limit=DOWNLOAD_SCRATCH)),
                ],
            ),
        ),
    )
