"""Karpenter on EKS: GPU nodes for pending model replicas in about a minute, beyond the managed pools.

What an operator would otherwise wire by hand, and why each piece is here:
- Controller IAM through EKS Pod Identity (no IRSA trust-policy edits), scoped as upstream scopes it.
- Its own node role with an `EC2_LINUX` access entry. Managed node groups already created an entry
  for the cluster's node role, and a principal can have only one, so Karpenter nodes get their own.
- The interruption queue and EventBridge rules: spot reclaims and scheduled maintenance drain a node
  *before* AWS takes it, so a model replica is rescheduled instead of dropped mid-request.
- `karpenter.sh/discovery` tags on the subnets and the cluster security group: how the EC2NodeClass
  finds where to launch.
- One EC2NodeClass and NodePools per configured pool: spot preferred by weight, on-demand fallback;
  the GPU (and spot) taints as on managed pools; an `nvidia.com/gpu` limit as the cost ceiling;
  `WhenEmpty` consolidation, so a node running (or loading) a model is never consolidated away.
- FlowSchemas: outside kube-system Karpenter would lose API priority under load (upstream docs).
- The controller runs on the system pool, never on nodes it manages.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from ...catalog.gpus import gpu_instance
from ...config.addons import KarpenterAddon, KarpenterNodePoolConfig
from ...releases import KARPENTER, addon_namespace, pinned_release
from ...scheduling import ZONE_LABEL, GpuPoolPlacement, gpu_pool_placement
from ..contract import ClusterContract
from .iam import pod_identity_role, policy_document, service_role
from .karpenter_iam import CONTROLLER_POLICIES, INTERRUPTION_EVENTS, KarpenterScope
from .network import KARPENTER_DISCOVERY_TAG

NAMESPACE = "karpenter"
RELEASE = "karpenter"
SERVICE_ACCOUNT = "karpenter"  # the chart's fullname for release "karpenter"; the Pod Identity association names it
NODE_POLICIES = {
    "worker": "AmazonEKSWorkerNodePolicy",
    "cni": "AmazonEKS_CNI_Policy",
    "ecr": "AmazonEC2ContainerRegistryPullOnly",
    "ssm": "AmazonSSMManagedInstanceCore",
}
# Spot first; on-demand only when no spot offering fits (Karpenter orders NodePools by weight).
NODEPOOL_WEIGHT = {"spot": 100, "on-demand": 10}
_ARCH = {"x86_64": "amd64", "arm64": "arm64"}


@dataclass(frozen=True)
class KarpenterArgs:
    cluster: ClusterContract
    config: KarpenterAddon
    fast_image_pull: bool = False  # the stack's scaleOut.fastImagePull


# Upstream's guidance: requests = limits, so the controller is never CPU-starved mid-scale-out.
CONTROLLER_RESOURCES = {"cpu": "1", "memory": "1Gi"}


def nodepool_name(pool: str, capacity_type: str) -> str:
    return f"{pool}-{capacity_type}"


def karpenter_placements(config: KarpenterAddon) -> list[GpuPoolPlacement]:
    """How workloads find and tolerate Karpenter's GPU nodes: the same labels and taints as managed pools."""
    return [
        gpu_pool_placement(pool.name, pool.gpu_type, pool.gpus_per_node, capacity, extra_labels=dict(pool.labels))
        for pool in config.node_pools
        for capacity in pool.capacity_types
    ]


# SOCI parallel pull (scaleOut.fastImagePull): nodeadm's FastImagePull gate makes containerd pull
# through the SOCI snapshotter in parallel-pull-unpack mode, 20 concurrent range requests of 16 MB
# per image and 12 layers unpacked at once, instead of one download and one unpack at a time. It needs
# no SOCI index, so the Docker Hub image works as it is. First in the AL2023 AMI v20250821
# (config.levers.FAST_IMAGE_PULL_SINCE; a pinned older alias is a config error); nodeadm skips it
# below 4 vCPU or 7 GiB, which no GPU instance is. Karpenter merges this NodeConfig with its own.
FAST_IMAGE_PULL_USER_DATA = """MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="LLMPLATFORM"

--LLMPLATFORM
Content-Type: application/node.eks.aws

apiVersion: node.eks.aws/v1alpha1
kind: NodeConfig
spec:
  featureGates:
    FastImagePull: true

--LLMPLATFORM--
"""
# Parallel unpack writes a ~25 GB image as fast as it downloads: AWS asks for at least 600 MiB/s of
# root-volume throughput, below which the parallel pull is slower than the default one. gp3's most.
FAST_PULL_ROOT_THROUGHPUT = 1000
FAST_PULL_ROOT_IOPS = 16000


def ec2_node_class_spec(
    pool: KarpenterNodePoolConfig, cluster_name: str, ami_alias: str, role_name, tags, fast_image_pull: bool = False
) -> dict:
    discovery = {KARPENTER_DISCOVERY_TAG: cluster_name}
    spec = {
        # An alias lets Karpenter pick the AL2023 NVIDIA variant (driver + toolkit baked in) for GPU types.
        "amiSelectorTerms": [{"alias": ami_alias}],
        "role": role_name,
        "subnetSelectorTerms": [{"tags": discovery}],
        "securityGroupSelectorTerms": [{"tags": discovery}],
        "blockDeviceMappings": [
            {
                "deviceName": "/dev/xvda",
                "rootVolume": True,
                "ebs": {
                    "volumeSize": f"{pool.disk_size_gib}Gi",
                    "volumeType": "gp3",
                    "encrypted": True,
                    "deleteOnTermination": True,
                    # Image pulls of ~10 GB vLLM layers are throughput-bound: above the gp3 baseline.
                    "throughput": FAST_PULL_ROOT_THROUGHPUT if fast_image_pull else 500,
                    "iops": FAST_PULL_ROOT_IOPS if fast_image_pull else 6000,
                },
            }
        ],
        # IMDSv2 only, one hop: pods cannot reach the node's credentials (they use Pod Identity).
        "metadataOptions": {"httpEndpoint": "enabled", "httpTokens": "required", "httpPutResponseHopLimit": 1},
        "tags": tags,
    }
    if fast_image_pull:
        spec["userData"] = FAST_IMAGE_PULL_USER_DATA
    return spec


def nodepool_spec(pool: KarpenterNodePoolConfig, placement: GpuPoolPlacement, zones: tuple[str, ...]) -> dict:
    arch = _ARCH[gpu_instance(pool.instance_types[0]).arch]
    return {
        "weight": NODEPOOL_WEIGHT[placement.capacity_type],
        "limits": {"nvidia.com/gpu": str(pool.max_gpus)},
        "disruption": {
            # WhenEmpty: only nodes without model pods are removed; a replica that is loading
            # weights (minutes) or serving is never consolidated onto another node.
            "consolidationPolicy": "WhenEmpty",
            "consolidateAfter": pool.consolidate_after,
            "budgets": [
                {"nodes": "10%"},
                # New AMIs (drift) roll one GPU node at a time.
                {"nodes": "1", "reasons": ["Drifted"]},
            ],
        },
        "template": {
            "metadata": {"labels": placement.labels},
            "spec": {
                "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": pool.name},
                "requirements": [
                    {"key": "node.kubernetes.io/instance-type", "operator": "In", "values": list(pool.instance_types)},
                    {"key": "karpenter.sh/capacity-type", "operator": "In", "values": [placement.capacity_type]},
                    {"key": "kubernetes.io/arch", "operator": "In", "values": [arch]},
                    {"key": ZONE_LABEL, "operator": "In", "values": list(zones)},
                ],
                "taints": [{"key": t.key, "value": t.value, "effect": t.effect} for t in placement.taints],
                "expireAfter": pool.expire_after,
                "terminationGracePeriod": pool.termination_grace_period,
            },
        },
    }


class Karpenter(pulumi.ComponentResource):
    release: k8s.helm.v3.Release
    placements: list[GpuPoolPlacement]

    def __init__(self, name: str, args: KarpenterArgs, opts: pulumi.ResourceOptions | None = None):
        # Built by the AWS cluster package since the layout of three clouds; deployed stacks know it
        # by its old type, so the alias keeps every URN below it.
        aliases = pulumi.ResourceOptions(aliases=[pulumi.Alias(type_="llm-platform:addons:Karpenter")])
        super().__init__("llm-platform:cluster:Karpenter", name, None, pulumi.ResourceOptions.merge(opts, aliases))
        cluster, cfg = args.cluster, args.config
        hooks = cluster.aws
        assert hooks is not None, "Karpenter is EKS-only; config validation keeps it off other clouds"
        child = pulumi.ResourceOptions(parent=self)

        node_role, node_policies = service_role(
            f"{name}-node", "ec2.amazonaws.com", ["sts:AssumeRole"], NODE_POLICIES, hooks.partition, self
        )
        # EC2_LINUX: EKS maps the role to system:nodes itself (no groups, no access policies allowed).
        node_access = aws.eks.AccessEntry(
            f"{name}-node", cluster_name=cluster.name, principal_arn=node_role.arn, type="EC2_LINUX", opts=child
        )

        queue = aws.sqs.Queue(
            f"{name}-interruption",
            name=f"{cluster.name}-karpenter",
            message_retention_seconds=300,  # interruption notices are useless after minutes
            sqs_managed_sse_enabled=True,
            opts=child,
        )
        aws.sqs.QueuePolicy(
            f"{name}-interruption",
            queue_url=queue.url,
            policy=queue.arn.apply(_queue_policy),
            opts=child,
        )
        for event, (source, detail_type) in INTERRUPTION_EVENTS.items():
            rule = aws.cloudwatch.EventRule(
                f"{name}-{event}",
                description=f"Karpenter interruption handling for {cluster.name}: {detail_type}",
                event_pattern=pulumi.Output.json_dumps({"source": [source], "detail-type": [detail_type]}),
                opts=child,
            )
            aws.cloudwatch.EventTarget(f"{name}-{event}", rule=rule.name, arn=queue.arn, opts=child)

        self._discovery_tags(name, cluster.name, hooks)

        controller_role, identity = pod_identity_role(
            f"{name}-controller",
            cluster_name=cluster.name,
            namespace=NAMESPACE,
            service_account=SERVICE_ACCOUNT,
            managed_policies={},
            partition=hooks.partition,
            pod_identity_agent=hooks.pod_identity_agent,
            parent=self,
        )
        scope = pulumi.Output.all(hooks.cluster_arn, node_role.arn, queue.arn).apply(
            lambda v: KarpenterScope(
                partition=hooks.partition,
                region=hooks.region,
                account_id=v[0].split(":")[4],
                cluster_name=cluster.name,
                node_role_arn=v[1],
                queue_arn=v[2],
            )
        )
        controller_policies = [
            aws.iam.RolePolicy(
                f"{name}-controller-{key}",
                role=controller_role.id,
                policy=scope.apply(lambda s, build=build: policy_document(build(s))),
                opts=child,
            )
            for key, build in CONTROLLER_POLICIES.items()
        ]
        k8s_child = pulumi.ResourceOptions(parent=self, provider=cluster.provider)
        namespace = addon_namespace(f"{name}-namespace", NAMESPACE, "restricted", cluster.provider, self)
        self._flow_schemas(name, k8s_child)
        self.release = pinned_release(
            f"{name}-release",
            RELEASE,
            KARPENTER,
            namespace,
            {
                "settings": {"clusterName": cluster.name, "interruptionQueue": queue.name},
                "replicas": cfg.replicas,
                "serviceAccount": {"name": SERVICE_ACCOUNT},
                # On the system pool; the chart's own affinity also keeps it off nodes it manages.
                "nodeSelector": {"kubernetes.io/os": "linux", **cluster.system_node_selector},
                "controller": {"resources": {"requests": dict(CONTROLLER_RESOURCES), "limits": dict(CONTROLLER_RESOURCES)}},
            },
            cluster.provider,
            self,
            # Credentials and node access must exist before the first node is launched.
            depends_on=[*identity, *controller_policies, node_access, *node_policies],
        )

        self.placements = karpenter_placements(cfg)
        crd_opts = pulumi.ResourceOptions(parent=self, provider=cluster.provider, depends_on=[self.release])
        for pool in cfg.node_pools:
            k8s.apiextensions.CustomResource(
                f"{name}-{pool.name}-nodeclass",
                api_version="karpenter.k8s.aws/v1",
                kind="EC2NodeClass",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=pool.name),
                spec=ec2_node_class_spec(
                    pool, cluster.name, cfg.ami_alias, node_role.name, {**hooks.tags, "llm-platform/pool": pool.name}, args.fast_image_pull
                ),
                opts=crd_opts,
            )
        for placement in self.placements:
            pool = next(p for p in cfg.node_pools if p.name == placement.pool)
            k8s.apiextensions.CustomResource(
                f"{name}-{nodepool_name(pool.name, placement.capacity_type)}",
                api_version="karpenter.sh/v1",
                kind="NodePool",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=nodepool_name(pool.name, placement.capacity_type)),
                spec=nodepool_spec(pool, placement, cluster.zones),
                opts=crd_opts,
            )

        self.register_outputs(
            {
                "interruptionQueue": queue.name,
                "nodeRoleName": node_role.name,
                "controllerRoleArn": controller_role.arn,
                "nodePools": [nodepool_name(p.pool, p.capacity_type) for p in self.placements],
            }
        )

    def _discovery_tags(self, name: str, cluster_name: str, hooks) -> None:
        """Subnets we created carry the tag already (tagging them again here would fight their own
        tags); an existing VPC's subnets and the EKS-made cluster security group are tagged here."""
        child = pulumi.ResourceOptions(parent=self)
        targets = {"cluster-sg": hooks.node_security_group_id}
        if not hooks.subnets_tagged_for_karpenter:
            targets.update({f"subnet-{i}": subnet for i, subnet in enumerate(hooks.private_subnet_ids)})
        for key, resource_id in targets.items():
            aws.ec2.Tag(
                f"{name}-discovery-{key}",
                resource_id=resource_id,
                key=KARPENTER_DISCOVERY_TAG,
                value=cluster_name,
                opts=child,
            )

    def _flow_schemas(self, name: str, opts: pulumi.ResourceOptions) -> None:
        """Upstream's FlowSchemas for a Karpenter outside kube-system: leader election and its API
        calls keep priority when the API server is busy (exactly when a spike needs nodes)."""
        fc = k8s.flowcontrol.v1
        leases = fc.PolicyRulesWithSubjectsArgs(
            resource_rules=[
                fc.ResourcePolicyRuleArgs(
                    api_groups=["coordination.k8s.io"], namespaces=["*"], resources=["leases"], verbs=["get", "create", "update"]
                )
            ],
            subjects=[_KARPENTER_SUBJECT],
        )
        everything = fc.PolicyRulesWithSubjectsArgs(
            non_resource_rules=[fc.NonResourcePolicyRuleArgs(non_resource_urls=["*"], verbs=["*"])],
            resource_rules=[
                fc.ResourcePolicyRuleArgs(api_groups=["*"], cluster_scope=True, namespaces=["*"], resources=["*"], verbs=["*"])
            ],
            subjects=[_KARPENTER_SUBJECT],
        )
        for suffix, precedence, level, rule in (
            ("leader-election", 200, "leader-election", leases),
            ("workload", 1000, "workload-high", everything),
        ):
            fc.FlowSchema(
                f"{name}-{suffix}",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=f"karpenter-{suffix}"),
                spec=fc.FlowSchemaSpecArgs(
                    distinguisher_method=fc.FlowDistinguisherMethodArgs(type="ByUser"),
                    matching_precedence=precedence,
                    priority_level_configuration=fc.PriorityLevelConfigurationReferenceArgs(name=level),
                    rules=[rule],
                ),
                opts=opts,
            )


_KARPENTER_SUBJECT = k8s.flowcontrol.v1.SubjectArgs(
    kind="ServiceAccount",
    service_account=k8s.flowcontrol.v1.ServiceAccountSubjectArgs(name=SERVICE_ACCOUNT, namespace=NAMESPACE),
)


def _queue_policy(queue_arn: str) -> str:
    return policy_document(
        [
            {
                "Sid": "EventBridgeDelivers",
                "Effect": "Allow",
                "Principal": {"Service": ["events.amazonaws.com", "sqs.amazonaws.com"]},
                "Action": "sqs:SendMessage",
                "Resource": queue_arn,
            },
            {
                "Sid": "DenyHTTP",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "sqs:*",
                "Resource": queue_arn,
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            },
        ]
    )
