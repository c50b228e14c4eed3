"""One OpenAI-compatible endpoint for every model: the Gateway API with the Inference Extension.

`routing.enabled` puts one Gateway in front of the stack's models. Body-based routing copies the
request's `model` into a header, one HTTPRoute per model matches its served name, and each model's
InferencePool has an endpoint picker (EPP) that chooses the replica by queue depth, KV-cache use
and prefix-cache hits. The gateway is internal unless `external` says otherwise.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from .errors import Problem, raise_problems
from .models import CpuQuantity, MemoryQuantity, ModelName
from .types import DNS_LABEL, ConfigModel, GoDuration, duration_seconds, formatted

SecretName = formatted(rf"(?=.{{1,63}}$){DNS_LABEL}", "a Kubernetes Secret name (lowercase DNS label)")
GatewayHostname = formatted(r"(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)+", "a DNS host name such as llm.example.com")


class EndpointPickerConfig(ConfigModel):
    """The EPP beside each model. The chart's default (8 CPU, 8 GiB) is sized for large fleets; one
    model's picker scoring a handful of replicas needs a fraction of a core."""

    replicas: int = Field(1, ge=1, le=5, description="EPP replicas per model; 2 or more in prod (leader election, a PodDisruptionBudget).")
    cpu: CpuQuantity = Field("500m", description="CPU request of each EPP replica.")
    memory: MemoryQuantity = Field("1Gi", description="Memory request (and limit) of each EPP replica.")


class RoutingConfig(ConfigModel):
    enabled: bool = Field(False, description="One Gateway routes OpenAI requests to the model their body names.")
    port: int = Field(80, ge=1, le=65535, description="The gateway listener's port.")
    tls_secret: SecretName | None = Field(
        None, description="A TLS Secret in the gateway's namespace: the listener serves HTTPS with it (otherwise HTTP)."
    )
    hostname: GatewayHostname | None = Field(None, description="The host name the listener answers for (default: any).")
    external: bool = Field(False, description="An internet-facing load balancer (default: internal to the VPC).")
    request_timeout: GoDuration = Field("900s", description="How long one request may take, generation included: long outputs stream for minutes.")
    models: list[ModelName] | None = Field(None, description="The models that get a route (default: every model).")
    endpoint_picker: EndpointPickerConfig = Field(EndpointPickerConfig(), description="The endpoint picker of each routed model.")

    @model_validator(mode="after")
    def _check(self) -> RoutingConfig:
        problems: list[Problem] = []
        if not 10 <= duration_seconds(self.request_timeout) <= 3600:
            problems.append((("requestTimeout",), "between 10s and 1h: shorter cuts generations, longer holds dead connections"))
        if self.models is not None:
            problems += [(("models", i), f"{m!r} is listed twice") for i, m in enumerate(self.models) if m in self.models[:i]]
        raise_problems(problems)
        return self
