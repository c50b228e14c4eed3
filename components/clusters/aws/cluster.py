"""EKS GPU cluster from pulumi-aws primitives, fulfilling the `ClusterContract`.

Choices an EKS expert would make, and why:
- Access entries (`authenticationMode: API`), never the aws-auth ConfigMap: access is an AWS API
  object that Pulumi can diff, and a bad ConfigMap edit can no longer lock everyone out.
- Secrets envelope-encrypted with a rotating KMS key; control-plane audit logs on.
- One CPU system node group (untainted) for controllers; one managed node group per GPU pool, on
  the AL2023 NVIDIA AMI, which already carries the driver and container toolkit (so the GPU
  Operator must not install them again), tainted `nvidia.com/gpu=present:NoSchedule`, and spot pools
  tainted once more so only workloads that accept interruption land there.
- Node auto-repair on every node group: EKS replaces NotReady nodes, and (with the node monitoring
  agent) nodes whose GPUs report fatal XID errors.
- `desiredSize` is ignored after creation: autoscalers own it, and `pulumi up` must not undo a
  scale-out in the middle of a traffic spike.
- The EBS CSI driver and an encrypted gp3 default StorageClass (EKS ships no block provisioner).
- Pod Identity agent add-on: add-on controllers (Karpenter, EFS CSI) get IAM without IRSA trust
  policy edits; the OIDC provider is still created for charts that only speak IRSA.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from ...catalog.gpus import cpu_arch, gpu_instance
from ...config.stack import ClusterConfig, GpuPoolConfig, StackConfig, SystemPoolConfig, node_group_resource_name
from ...scheduling import GpuPoolPlacement, Taint, system_pool_labels
from ..contract import AwsClusterHooks, ClusterContract, GatewaySupport, SharedWeights
from ..shared import block_reclaim_policy, exec_kubeconfig, placement_of
from .iam import (
    POD_IDENTITY_ACTIONS,
    POD_IDENTITY_SERVICE,
    allow_policy,
    eks_access_policy_arn,
    partition_for_region,
    service_role,
)
from .karpenter import Karpenter, KarpenterArgs
from .network import AwsVpc, AwsVpcArgs
from .storage import EfsSharedStorage, EfsSharedStorageArgs

_EKS_TAINT_EFFECT = {"NoSchedule": "NO_SCHEDULE", "PreferNoSchedule": "PREFER_NO_SCHEDULE", "NoExecute": "NO_EXECUTE"}
_EKS_CAPACITY_TYPE = {"on-demand": "ON_DEMAND", "spot": "SPOT"}
_AMI_STANDARD = {"x86_64": "AL2023_x86_64_STANDARD", "arm64": "AL2023_ARM_64_STANDARD"}
_AMI_NVIDIA = {"x86_64": "AL2023_x86_64_NVIDIA", "arm64": "AL2023_ARM_64_NVIDIA"}

BLOCK_STORAGE_CLASS = "gp3"
# EKS has no managed inference gateway: our Istio, behind a Network Load Balancer that EKS's own
# cloud controller creates for the proxies' Service (no AWS Load Balancer Controller needed). An
# internal one uses the private subnets tagged kubernetes.io/role/internal-elb.
ISTIO_ON_EKS = GatewaySupport(
    provider="istio",
    internal_class="istio",
    external_class="istio",
    installs_crds=True,
    in_cluster_proxies=True,
    internal_lb_annotations={"service.beta.kubernetes.io/aws-load-balancer-type": "nlb", "service.beta.kubernetes.io/aws-load-balancer-internal": "true"},
    external_lb_annotations={"service.beta.kubernetes.io/aws-load-balancer-type": "nlb"},
)
_CLUSTER_LOG_TYPES = ["api", "audit", "authenticator"]
_NODE_POLICIES = {
    "worker": "AmazonEKSWorkerNodePolicy",
    "cni": "AmazonEKS_CNI_Policy",
    "ecr": "AmazonEC2ContainerRegistryPullOnly",
    "ssm": "AmazonSSMManagedInstanceCore",  # shell on a node without SSH keys or open ports
}


def ami_type_for_pool(pool: GpuPoolConfig) -> str:
    return _AMI_NVIDIA[gpu_instance(pool.instance_types[0]).arch]


def ami_type_for_system_pool(pool: SystemPoolConfig) -> str:
    return _AMI_STANDARD[cpu_arch(pool.instance_types[0])]


def eks_taints(taints: tuple[Taint, ...]) -> list[aws.eks.NodeGroupTaintArgs]:
    return [aws.eks.NodeGroupTaintArgs(key=t.key, value=t.value, effect=_EKS_TAINT_EFFECT[t.effect]) for t in taints]


def kubeconfig_json(cluster_name: str, region: str, endpoint: str, ca_data: str) -> str:
    """A kubeconfig that authenticates with `aws eks get-token` (short-lived tokens, no static secret)."""
    return exec_kubeconfig(
        cluster_name,
        endpoint,
        ca_data,
        {
            "command": "aws",
            "args": ["eks", "get-token", "--cluster-name", cluster_name, "--region", region, "--output", "json"],
            "interactiveMode": "Never",
        },
    )


@dataclass(frozen=True)
class _NodeGroupBase:
    """What every node group of the cluster shares."""

    cluster_name: pulumi.Output[str]
    node_role_arn: pulumi.Output[str]
    subnet_ids: list[pulumi.Output[str]]
    opts: pulumi.ResourceOptions


@dataclass(frozen=True)
class EksGpuClusterArgs:
    region: str
    cluster: ClusterConfig
    system_pool: SystemPoolConfig
    gpu_pools: list[GpuPoolConfig]
    tags: dict[str, str]
    aws_provider: pulumi.ProviderResource  # the stack's; add-ons with AWS resources use it too
    karpenter_discovery: bool = False  # tag the private subnets we create for Karpenter


class EksGpuCluster(pulumi.ComponentResource):
    """The cluster in build order: network, control plane, node groups, add-ons, Kubernetes access."""

    contract: ClusterContract

    def __init__(self, name: str, args: EksGpuClusterArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("llm-platform:cluster:EksGpuCluster", name, None, opts)
        self._name = name
        self._args = args
        self._partition = partition_for_region(args.region)
        cfg = args.cluster

        vpc_id, subnet_ids = self._network(pulumi.ResourceOptions(parent=self, protect=cfg.protect, retain_on_delete=cfg.protect))
        cluster = self._control_plane(subnet_ids)
        for arn in cfg.admin_principal_arns:
            self._admin_access(cluster, arn)
        oidc = aws.iam.OpenIdConnectProvider(
            f"{name}-oidc",
            url=cluster.identities.apply(lambda ids: ids[0].oidcs[0].issuer),
            client_id_lists=["sts.amazonaws.com"],
            opts=pulumi.ResourceOptions(parent=self),
        )

        node_role, node_policies = self._node_role()
        node_opts = pulumi.ResourceOptions(
            parent=self,
            depends_on=node_policies,
            # Autoscalers own the node count after creation; `pulumi up` must not undo a scale-out.
            ignore_changes=["scalingConfig.desiredSize"],
        )
        base = _NodeGroupBase(cluster.name, node_role.arn, subnet_ids, node_opts)
        system_group = self._node_group(
            f"{name}-system",
            base,
            args.system_pool,
            ami_type_for_system_pool(args.system_pool),
            "ON_DEMAND",
            system_pool_labels(),
        )
        placements = [placement_of(pool) for pool in args.gpu_pools]
        gpu_groups = [
            self._node_group(
                node_group_resource_name(self._name, pool.name),
                base,
                pool,
                ami_type_for_pool(pool),
                _EKS_CAPACITY_TYPE[pool.capacity_type],
                placement.labels,
                placement.taints,
            )
            for pool, placement in zip(args.gpu_pools, placements, strict=True)
        ]

        # The VPC CNI as a managed add-on with its network policy agent on: without it EKS accepts
        # NetworkPolicies and enforces none (model services restrict their callers with them).
        self._addon(cluster, "vpc-cni", "vpc-cni", [], configuration_values=json.dumps({"enableNetworkPolicy": "true"}))
        pod_identity_agent = self._addon(cluster, "pod-identity", "eks-pod-identity-agent", [system_group])
        # Feeds node auto-repair with GPU health (NVIDIA XID errors).
        self._addon(cluster, "node-monitoring", "eks-node-monitoring-agent", [system_group])
        # EKS ships no resource metrics API (GKE and AKS do): without it `kubectl top` fails and a
        # CPU HorizontalPodAutoscaler (the gateway's proxies) never scales. EKS community add-on.
        self._addon(cluster, "metrics-server", "metrics-server", [system_group])
        ebs_csi = self._ebs_csi_driver(cluster, pod_identity_agent)

        kubeconfig = pulumi.Output.secret(
            pulumi.Output.all(cluster.endpoint, cluster.certificate_authority.data).apply(
                lambda v: kubeconfig_json(cfg.name, args.region, v[0], v[1])
            )
        )
        provider = k8s.Provider(
            f"{name}-k8s",
            kubeconfig=kubeconfig,
            # Replace the provider (and so every k8s object) only if the cluster itself changes,
            # never because a token or endpoint detail in the kubeconfig rotated.
            cluster_identifier=cfg.name,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[system_group]),
        )
        block_storage = self._default_storage_class(provider, ebs_csi, cfg.protect)

        self.contract = ClusterContract(
            cloud="aws",
            name=cfg.name,
            provider=provider,
            kubeconfig=kubeconfig,
            zones=tuple(cfg.network.zones),
            system_node_selector=system_pool_labels(),
            gpu_pools=tuple(placements),
            ready=(system_group, *gpu_groups),
            block_storage_class=BLOCK_STORAGE_CLASS,
            block_storage=block_storage,
            # AL2023 NVIDIA AMI: driver, CUDA user-mode driver, container toolkit (AWS EKS docs).
            gpu_driver_preinstalled=True,
            gateway=ISTIO_ON_EKS,
            aws=AwsClusterHooks(
                region=args.region,
                partition=self._partition,
                cluster_arn=cluster.arn,
                vpc_id=vpc_id,
                private_subnet_ids=subnet_ids,
                subnets_tagged_for_karpenter=self._args.karpenter_discovery and not cfg.network.is_existing,
                node_security_group_id=cluster.vpc_config.cluster_security_group_id,
                node_role_arn=node_role.arn,
                node_role_name=node_role.name,
                oidc_provider_arn=oidc.arn,
                oidc_issuer_url=oidc.url,
                pod_identity_agent=pod_identity_agent,
                tags=args.tags,
                provider=args.aws_provider,
            ),
        )
        self.register_outputs(
            {
                "clusterName": cluster.name,
                "endpoint": cluster.endpoint,
                "kubeconfig": kubeconfig,
                "oidcProviderArn": oidc.arn,
                "vpcId": vpc_id,
            }
        )

    def _network(self, opts: pulumi.ResourceOptions) -> tuple[pulumi.Output[str], list[pulumi.Output[str]]]:
        net = self._args.cluster.network
        if net.is_existing:
            return pulumi.Output.from_input(net.vpc_id), [pulumi.Output.from_input(s.id) for s in net.private_subnets]
        vpc = AwsVpc(
            f"{self._name}-network",
            AwsVpcArgs(
                cluster_name=self._args.cluster.name,
                region=self._args.region,
                cidr=net.vpc_cidr,
                zones=net.zones,
                nat_gateways=net.nat_gateways,
                karpenter_discovery=self._args.karpenter_discovery,
            ),
            opts=opts,
        )
        return vpc.vpc_id, vpc.private_subnet_ids

    def _service_role(self, suffix: str, service: str, actions: list[str], policies: dict[str, str]):
        return service_role(f"{self._name}-{suffix}", service, actions, policies, self._partition, self)

    def _control_plane(self, subnet_ids: list[pulumi.Output[str]]) -> aws.eks.Cluster:
        cfg = self._args.cluster
        secrets_key = aws.kms.Key(
            f"{self._name}-secrets",
            description=f"Envelope encryption of Kubernetes secrets in EKS cluster {cfg.name}",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            opts=pulumi.ResourceOptions(parent=self, protect=cfg.protect, retain_on_delete=cfg.protect),
        )
        role, attachments = self._service_role(
            "cluster", "eks.amazonaws.com", ["sts:AssumeRole", "sts:TagSession"], {"": "AmazonEKSClusterPolicy"}
        )
        # AmazonEKSClusterPolicy grants no KMS rights: without these, envelope encryption fails at create.
        kms_use = aws.iam.RolePolicy(
            f"{self._name}-cluster-kms",
            role=role.id,
            policy=secrets_key.arn.apply(
                lambda arn: allow_policy(["kms:Encrypt", "kms:Decrypt", "kms:ListGrants", "kms:DescribeKey"], arn)
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        return aws.eks.Cluster(
            f"{self._name}-eks",
            name=cfg.name,
            version=cfg.kubernetes_version,
            role_arn=role.arn,
            vpc_config=aws.eks.ClusterVpcConfigArgs(
                subnet_ids=subnet_ids,
                endpoint_private_access=True,
                endpoint_public_access=cfg.endpoint_public_access,
                public_access_cidrs=cfg.public_access_cidrs if cfg.endpoint_public_access else None,
            ),
            access_config=aws.eks.ClusterAccessConfigArgs(
                authentication_mode="API",
                # The identity running `pulumi up` must reach the API to install add-ons.
                bootstrap_cluster_creator_admin_permissions=True,
            ),
            encryption_config=aws.eks.ClusterEncryptionConfigArgs(
                resources=["secrets"],
                provider=aws.eks.ClusterEncryptionConfigProviderArgs(key_arn=secrets_key.arn),
            ),
            enabled_cluster_log_types=_CLUSTER_LOG_TYPES,
            deletion_protection=cfg.protect,
            opts=pulumi.ResourceOptions(parent=self, protect=cfg.protect, retain_on_delete=cfg.protect, depends_on=[*attachments, kms_use]),
        )

    def _admin_access(self, cluster: aws.eks.Cluster, arn: str) -> None:
        # Named by a hash of the ARN, not its list position, so reordering the list replaces nothing.
        name = f"{self._name}-admin-{hashlib.sha256(arn.encode()).hexdigest()[:8]}"
        entry = aws.eks.AccessEntry(
            name, cluster_name=cluster.name, principal_arn=arn, type="STANDARD", opts=pulumi.ResourceOptions(parent=self)
        )
        aws.eks.AccessPolicyAssociation(
            name,
            cluster_name=cluster.name,
            principal_arn=arn,
            policy_arn=eks_access_policy_arn(self._partition, "AmazonEKSClusterAdminPolicy"),
            access_scope=aws.eks.AccessPolicyAssociationAccessScopeArgs(type="cluster"),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[entry]),
        )

    def _node_role(self):
        return self._service_role("node", "ec2.amazonaws.com", ["sts:AssumeRole"], _NODE_POLICIES)

    def _node_group(
        self,
        resource_name: str,
        base: _NodeGroupBase,
        pool: SystemPoolConfig | GpuPoolConfig,
        ami_type: str,
        capacity_type: str,
        labels: dict[str, str],
        taints: tuple[Taint, ...] = (),
    ) -> aws.eks.NodeGroup:
        return aws.eks.NodeGroup(
            resource_name,
            cluster_name=base.cluster_name,
            node_role_arn=base.node_role_arn,
            subnet_ids=base.subnet_ids,
            instance_types=pool.instance_types,
            ami_type=ami_type,
            capacity_type=capacity_type,
            disk_size=pool.disk_size_gib,
            scaling_config=aws.eks.NodeGroupScalingConfigArgs(
                min_size=pool.min_size, max_size=pool.max_size, desired_size=pool.desired
            ),
            # One node at a time: a GPU node drains slowly (model replicas need minutes to move).
            update_config=aws.eks.NodeGroupUpdateConfigArgs(max_unavailable=1),
            # EKS replaces NotReady nodes and, with the monitoring agent, GPUs with fatal XID errors.
            node_repair_config=aws.eks.NodeGroupNodeRepairConfigArgs(enabled=True),
            labels=labels,
            taints=eks_taints(taints) or None,
            tags={"Name": resource_name},
            opts=base.opts,
        )

    def _addon(self, cluster, suffix: str, addon_name: str, depends_on: list[pulumi.Resource], **extra) -> aws.eks.Addon:
        """An EKS managed add-on at EKS's default version for the cluster's Kubernetes version.
        Add-ons with pods wait for the system pool: with no node to run on they stay DEGRADED."""
        return aws.eks.Addon(
            f"{self._name}-{suffix}",
            cluster_name=cluster.name,
            addon_name=addon_name,
            resolve_conflicts_on_create="OVERWRITE",
            resolve_conflicts_on_update="OVERWRITE",
            opts=pulumi.ResourceOptions(parent=self, depends_on=depends_on),
            **extra,
        )

    def _ebs_csi_driver(self, cluster: aws.eks.Cluster, pod_identity_agent: aws.eks.Addon) -> aws.eks.Addon:
        """EKS ships no block-storage provisioner: Prometheus and Alertmanager volumes need this one."""
        role, attachments = self._service_role(
            "ebs-csi",
            POD_IDENTITY_SERVICE,
            POD_IDENTITY_ACTIONS,
            {"": "service-role/AmazonEBSCSIDriverPolicy"},
        )
        return self._addon(
            cluster,
            "ebs-csi",
            "aws-ebs-csi-driver",
            [pod_identity_agent, *attachments],
            pod_identity_associations=[
                aws.eks.AddonPodIdentityAssociationArgs(role_arn=role.arn, service_account="ebs-csi-controller-sa")
            ],
        )

    def _default_storage_class(
        self, provider: k8s.Provider, ebs_csi: aws.eks.Addon, protect: bool
    ) -> k8s.storage.v1.StorageClass:
        return k8s.storage.v1.StorageClass(
            f"{self._name}-gp3",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=BLOCK_STORAGE_CLASS,
                annotations={"storageclass.kubernetes.io/is-default-class": "true"},
            ),
            provisioner="ebs.csi.aws.com",
            parameters={"type": "gp3", "encrypted": "true", "csi.storage.k8s.io/fstype": "ext4"},
            # Bind where the pod lands: an EBS volume lives in one zone.
            volume_binding_mode="WaitForFirstConsumer",
            allow_volume_expansion=True,
            reclaim_policy=block_reclaim_policy(protect),
            opts=pulumi.ResourceOptions(parent=self, provider=provider, depends_on=[ebs_csi]),
        )


def build_eks_cluster(name: str, cfg: StackConfig, tags: dict[str, str]) -> ClusterContract:
    """An explicit AWS provider per stack: the region comes from the stack config (not ambient
    `aws:region`), and every AWS resource gets the stack's tags through `default_tags`."""
    aws_provider = aws.Provider(
        f"{name}-aws",
        region=cfg.region,
        default_tags=aws.ProviderDefaultTagsArgs(tags=tags),
    )
    cluster = EksGpuCluster(
        name,
        EksGpuClusterArgs(
            region=cfg.region,
            cluster=cfg.cluster,
            system_pool=cfg.system_pool,
            gpu_pools=list(cfg.gpu_pools),
            tags=tags,
            aws_provider=aws_provider,
            karpenter_discovery=cfg.addons.karpenter.enabled,
        ),
        opts=pulumi.ResourceOptions(providers=[aws_provider]),
    )
    contract = cluster.contract
    # EKS's own add-ons: elastic GPU nodes (Karpenter) and the shared-weights file system (EFS).
    aws_opts = pulumi.ResourceOptions(providers=[aws_provider])
    elastic: tuple[GpuPoolPlacement, ...] = ()
    if cfg.addons.karpenter.enabled:
        karpenter = Karpenter(f"{name}-karpenter", KarpenterArgs(contract, cfg.addons.karpenter, cfg.scale_out.fast_image_pull), opts=aws_opts)
        elastic = tuple(karpenter.placements)
    shared = None
    if cfg.addons.efs_csi.enabled:
        storage = EfsSharedStorage(f"{name}-weights", EfsSharedStorageArgs(contract, cfg.addons.efs_csi, protect=cfg.cluster.protect), opts=aws_opts)
        shared = SharedWeights(storage.storage_class_name, storage.storage_class)
    return replace(contract, elastic_gpu_pools=elastic, shared_weights=shared)
