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


DEFAULT_REQUEST_TIMEOUT_SECONDS = 900
# On GKE the llm-d-router-gateway chart (v0.10.0 `templates/gke.yaml`) writes the pool's
# GCPBackendPolicy with `timeoutSec: 300`, fixed: the load balancer ends any longer request there,
# whatever the HTTPRoute says.
GKE_POOL_TIMEOUT_SECONDS = 300


class GatewayProxyConfig(ConfigModel):
    """The in-cluster gateway's Envoy proxies (Istio, on EKS and AKS; GKE's gateway is managed and
    has none). They only relay streams, so a quarter core each carries a lot of tokens."""

    replicas: int = Field(1, ge=1, le=20, description="Proxy replicas, spread across zones; 2 or more in prod (a PodDisruptionBudget, and 2 istiod).")
    max_replicas: int | None = Field(None, ge=1, le=50, description="With a value above `replicas`, a HorizontalPodAutoscaler on CPU between the two.")
    cpu: CpuQuantity = Field("250m", description="CPU request of each proxy.")
    memory: MemoryQuantity = Field("256Mi", description="Memory request (and limit) of each proxy.")

    @model_validator(mode="after")
    def _check(self) -> GatewayProxyConfig:
        if self.max_replicas is not None and self.max_replicas < self.replicas:
            raise_problems([(("maxReplicas",), f"{self.max_replicas} is below replicas ({self.replicas})")])
        return self


class RoutingConfig(ConfigModel):
    enabled: bool = Field(False, description="One Gateway routes OpenAI requests to the model their body names.")
    port: int = Field(80, ge=1, le=65535, description="The gateway listener's port.")
    tls_secret: SecretName | None = Field(
        None, description="A TLS Secret in the gateway's namespace: the listener serves HTTPS with it (otherwise HTTP)."
    )
    hostname: GatewayHostname | None = Field(None, description="The host name the listener answers for (default: any).")
    external: bool = Field(False, description="An internet-facing load balancer (default: internal to the VPC).")
    request_timeout: GoDuration | None = Field(
        None, description="How long one request may take, generation included: long outputs stream for minutes (default 900s; 300s on GKE, its cap)."
    )
    models: list[ModelName] | None = Field(None, description="The models that get a route (default: every model).")
    endpoint_picker: EndpointPickerConfig = Field(EndpointPickerConfig(), description="The endpoint picker of each routed model.")
    proxy: GatewayProxyConfig = Field(GatewayProxyConfig(), description="The gateway's own proxies where they run in the cluster (EKS, AKS).")

    @model_validator(mode="after")
    def _check(self) -> RoutingConfig:
        problems: list[Problem] = []
        if self.request_timeout is not None and not 10 <= duration_seconds(self.request_timeout) <= 3600:
            problems.append((("requestTimeout",), "between 10s and 1h: shorter cuts generations, longer holds dead connections"))
        if self.models is not None:
            problems += [(("models", i), f"{m!r} is listed twice") for i, m in enumerate(self.models) if m in self.models[:i]]
        raise_problems(problems)
        return self

    def request_timeout_seconds(self, cap_seconds: int | None) -> int:
        """The route's timeout: the configured one, or the default within the gateway's cap."""
        if self.request_timeout is not None:
            return duration_seconds(self.request_timeout)
        return min(DEFAULT_REQUEST_TIMEOUT_SECONDS, cap_seconds or DEFAULT_REQUEST_TIMEOUT_SECONDS)
