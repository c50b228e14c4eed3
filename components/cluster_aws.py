"""EKS GPU cluster from pulumi-aws primitives, fulfilling the `ClusterContract`.

Choices an EKS expert would make, and why:
- Access entries (`authenticationMode: API`), never the aws-auth ConfigMap: access is an AWS API
  object that Pulumi can diff, and a bad ConfigMap edit can no longer lock everyone out.
- Secrets envelope-encrypted with a rotating KMS key; control-plane audit logs on.
- One CPU system node group (untainted) for controllers; one managed node group per GPU pool, on
  the AL2023 NVIDIA AMI, which already carries the driver and container toolkit (so the GPU
  Operator must not install them again), tainted `nvidia.com/gpu=present:NoSchedule`, and spot pools
  tainted once more so only workloads that accept interruption land there.
- Node auto-repair on GPU node groups: EKS replaces nodes whose GPUs report fatal XID errors.
- `desiredSize` is ignored after creation: autoscalers own it, and `pulumi up` must not undo a
  scale-out in the middle of a traffic spike.
- The EBS CSI driver and an encrypted gp3 default StorageClass (EKS ships no block provisioner).
- Pod Identity agent add-on: add-on controllers (Karpenter, EFS CSI) get IAM without IRSA trust
  policy edits; the OIDC provider is still created for charts that only speak IRSA.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from .aws_network import AwsVpc, AwsVpcArgs
from .cluster_contract import AwsClusterHooks, ClusterContract
from .config import ClusterConfig, GpuPoolConfig, StackConfig, SystemPoolConfig
from .gpu_catalog import cpu_arch, gpu_instance
from .gpu_scheduling import GpuPoolPlacement, Taint, gpu_pool_placement, system_pool_labels

_EKS_TAINT_EFFECT = {"NoSchedule": "NO_SCHEDULE", "PreferNoSchedule": "PREFER_NO_SCHEDULE", "NoExecute": "NO_EXECUTE"}
_EKS_CAPACITY_TYPE = {"on-demand": "ON_DEMAND", "spot": "SPOT"}
_AMI_STANDARD = {"x86_64": "AL2023_x86_64_STANDARD", "arm64": "AL2023_ARM_64_STANDARD"}
_AMI_NVIDIA = {"x86_64": "AL2023_x86_64_NVIDIA", "arm64": "AL2023_ARM_64_NVIDIA"}

BLOCK_STORAGE_CLASS = "gp3"
_CLUSTER_LOG_TYPES = ["api", "audit", "authenticator"]
_NODE_POLICIES = {
    "worker": "AmazonEKSWorkerNodePolicy",
    "cni": "AmazonEKS_CNI_Policy",
    "ecr": "AmazonEC2ContainerRegistryPullOnly",
    "ssm": "AmazonSSMManagedInstanceCore",  # shell on a node without SSH keys or open ports
}


def partition_for_region(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def _managed_policy(partition: str, policy: str) -> str:
    return f"arn:{partition}:iam::aws:policy/{policy}"


def _assume_role_policy(service: str, actions: list[str]) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": actions}],
        }
    )


def ami_type_for_pool(pool: GpuPoolConfig) -> str:
    return _AMI_NVIDIA[gpu_instance(pool.instance_types[0]).arch]


def ami_type_for_system_pool(pool: SystemPoolConfig) -> str:
    return _AMI_STANDARD[cpu_arch(pool.instance_types[0])]


def eks_taints(taints: tuple[Taint, ...]) -> list[aws.eks.NodeGroupTaintArgs]:
    return [aws.eks.NodeGroupTaintArgs(key=t.key, value=t.value, effect=_EKS_TAINT_EFFECT[t.effect]) for t in taints]


def kubeconfig_json(cluster_name: str, region: str, endpoint: str, ca_data: str) -> str:
    """A kubeconfig that authenticates with `aws eks get-token` (short-lived tokens, no static secret)."""
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": cluster_name, "cluster": {"server": endpoint, "certificate-authority-data": ca_data}}],
            "contexts": [{"name": cluster_name, "context": {"cluster": cluster_name, "user": cluster_name}}],
            "current-context": cluster_name,
            "users": [
                {
                    "name": cluster_name,
                    "user": {
                        "exec": {
                            "apiVersion": "client.authentication.k8s.io/v1beta1",
                            "command": "aws",
                            "args": ["eks", "get-token", "--cluster-name", cluster_name, "--region", region, "--output", "json"],
                            "interactiveMode": "Never",
                        }
                    },
                }
            ],
        }
    )


@dataclass(frozen=True)
class EksGpuClusterArgs:
    region: str
    cluster: ClusterConfig
    system_pool: SystemPoolConfig
    gpu_pools: list[GpuPoolConfig]
    tags: dict[str, str]


class EksGpuCluster(pulumi.ComponentResource):
    contract: ClusterContract

    def __init__(self, name: str, args: EksGpuClusterArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("llm-platform:cluster:EksGpuCluster", name, None, opts)
        cfg = args.cluster
        partition = partition_for_region(args.region)
        child = pulumi.ResourceOptions(parent=self)
        protected = pulumi.ResourceOptions(parent=self, protect=cfg.protect)

        vpc_id, subnet_ids = self._network(name, args, protected)

        secrets_key = aws.kms.Key(
            f"{name}-secrets",
            description=f"Envelope encryption of Kubernetes secrets in EKS cluster {cfg.name}",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            opts=protected,
        )
        cluster_role = aws.iam.Role(
            f"{name}-cluster",
            assume_role_policy=_assume_role_policy("eks.amazonaws.com", ["sts:AssumeRole", "sts:TagSession"]),
            opts=child,
        )
        cluster_policy = aws.iam.RolePolicyAttachment(
            f"{name}-cluster",
            role=cluster_role.name,
            policy_arn=_managed_policy(partition, "AmazonEKSClusterPolicy"),
            opts=child,
        )
        # AmazonEKSClusterPolicy grants no KMS rights: without these, envelope encryption fails at create.
        cluster_kms = aws.iam.RolePolicy(
            f"{name}-cluster-kms",
            role=cluster_role.id,
            policy=secrets_key.arn.apply(
                lambda arn: json.dumps(
                    {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Effect": "Allow",
                                "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ListGrants", "kms:DescribeKey"],
                                "Resource": arn,
                            }
                        ],
                    }
                )
            ),
            opts=child,
        )
        cluster = aws.eks.Cluster(
            f"{name}-eks",
            name=cfg.name,
            version=cfg.kubernetes_version,
            role_arn=cluster_role.arn,
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
            opts=pulumi.ResourceOptions(parent=self, protect=cfg.protect, depends_on=[cluster_policy, cluster_kms]),
        )

        for arn in cfg.admin_principal_arns:
            self._admin_access(name, cluster, arn, partition)

        oidc = aws.iam.OpenIdConnectProvider(
            f"{name}-oidc",
            url=cluster.identities.apply(lambda ids: ids[0].oidcs[0].issuer),
            client_id_lists=["sts.amazonaws.com"],
            opts=child,
        )

        node_role = aws.iam.Role(
            f"{name}-node",
            assume_role_policy=_assume_role_policy("ec2.amazonaws.com", ["sts:AssumeRole"]),
            opts=child,
        )
        node_policies = [
            aws.iam.RolePolicyAttachment(
                f"{name}-node-{short}",
                role=node_role.name,
                policy_arn=_managed_policy(partition, policy),
                opts=child,
            )
            for short, policy in _NODE_POLICIES.items()
        ]
        node_opts = pulumi.ResourceOptions(
            parent=self,
            depends_on=node_policies,
            # Autoscalers own the node count after creation; `pulumi up` must not undo a scale-out.
            ignore_changes=["scalingConfig.desiredSize"],
        )

        system_labels = system_pool_labels()
        system_group = aws.eks.NodeGroup(
            f"{name}-system",
            cluster_name=cluster.name,
            node_role_arn=node_role.arn,
            subnet_ids=subnet_ids,
            instance_types=args.system_pool.instance_types,
            ami_type=ami_type_for_system_pool(args.system_pool),
            capacity_type="ON_DEMAND",
            disk_size=args.system_pool.disk_size_gib,
            scaling_config=aws.eks.NodeGroupScalingConfigArgs(
                min_size=args.system_pool.min_size,
                max_size=args.system_pool.max_size,
                desired_size=args.system_pool.desired,
            ),
            update_config=aws.eks.NodeGroupUpdateConfigArgs(max_unavailable=1),
            labels=system_labels,
            tags={"Name": f"{name}-system"},
            opts=node_opts,
        )

        placements: list[GpuPoolPlacement] = []
        gpu_groups: list[aws.eks.NodeGroup] = []
        for pool in args.gpu_pools:
            placement = gpu_pool_placement(
                pool.name,
                pool.gpu_type,
                pool.gpus_per_node,
                pool.capacity_type,
                extra_labels=dict(pool.labels),
                extra_taints=tuple(Taint(t.key, t.value, t.effect) for t in pool.taints),
            )
            placements.append(placement)
            gpu_groups.append(
                aws.eks.NodeGroup(
                    f"{name}-gpu-{pool.name}",
                    cluster_name=cluster.name,
                    node_role_arn=node_role.arn,
                    subnet_ids=subnet_ids,
                    instance_types=pool.instance_types,
                    ami_type=ami_type_for_pool(pool),
                    capacity_type=_EKS_CAPACITY_TYPE[pool.capacity_type],
                    disk_size=pool.disk_size_gib,
                    scaling_config=aws.eks.NodeGroupScalingConfigArgs(
                        min_size=pool.min_size, max_size=pool.max_size, desired_size=pool.desired
                    ),
                    # One node at a time: a GPU node drains slowly (model replicas need minutes to move).
                    update_config=aws.eks.NodeGroupUpdateConfigArgs(max_unavailable=1),
                    node_repair_config=aws.eks.NodeGroupNodeRepairConfigArgs(enabled=True),
                    labels=placement.labels,
                    taints=eks_taints(placement.taints),
                    tags={"Name": f"{name}-gpu-{pool.name}"},
                    opts=node_opts,
                )
            )

        # Add-ons with pods wait for the system pool: an add-on with no node to run on stays DEGRADED.
        addon_opts = pulumi.ResourceOptions(parent=self, depends_on=[system_group])
        pod_identity_agent = aws.eks.Addon(
            f"{name}-pod-identity",
            cluster_name=cluster.name,
            addon_name="eks-pod-identity-agent",
            resolve_conflicts_on_create="OVERWRITE",
            resolve_conflicts_on_update="OVERWRITE",
            opts=addon_opts,
        )
        aws.eks.Addon(
            f"{name}-node-monitoring",
            cluster_name=cluster.name,
            addon_name="eks-node-monitoring-agent",  # feeds node auto-repair with GPU (XID) health
            resolve_conflicts_on_create="OVERWRITE",
            resolve_conflicts_on_update="OVERWRITE",
            opts=addon_opts,
        )

        ebs_csi = self._ebs_csi_driver(name, cluster, partition, pod_identity_agent)

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
        block_storage = k8s.storage.v1.StorageClass(
            f"{name}-gp3",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=BLOCK_STORAGE_CLASS,
                annotations={"storageclass.kubernetes.io/is-default-class": "true"},
            ),
            provisioner="ebs.csi.aws.com",
            parameters={"type": "gp3", "encrypted": "true", "csi.storage.k8s.io/fstype": "ext4"},
            # Bind where the pod lands: an EBS volume lives in one zone.
            volume_binding_mode="WaitForFirstConsumer",
            allow_volume_expansion=True,
            reclaim_policy="Delete",
            opts=pulumi.ResourceOptions(parent=self, provider=provider, depends_on=[ebs_csi]),
        )

        self.contract = ClusterContract(
            cloud="aws",
            name=cfg.name,
            provider=provider,
            kubeconfig=kubeconfig,
            zones=tuple(cfg.network.zones),
            system_node_selector=system_labels,
            gpu_pools=tuple(placements),
            ready=(system_group, *gpu_groups),
            block_storage_class=BLOCK_STORAGE_CLASS,
            block_storage=block_storage,
            aws=AwsClusterHooks(
                region=args.region,
                partition=partition,
                vpc_id=vpc_id,
                private_subnet_ids=subnet_ids,
                node_security_group_id=cluster.vpc_config.cluster_security_group_id,
                node_role_arn=node_role.arn,
                node_role_name=node_role.name,
                oidc_provider_arn=oidc.arn,
                oidc_issuer_url=oidc.url,
                pod_identity_agent=pod_identity_agent,
                tags=args.tags,
            ),
        )
        self.cluster_name = cluster.name
        self.endpoint = cluster.endpoint
        self.kubeconfig = kubeconfig
        self.register_outputs(
            {
                "clusterName": cluster.name,
                "endpoint": cluster.endpoint,
                "kubeconfig": kubeconfig,
                "oidcProviderArn": oidc.arn,
                "vpcId": vpc_id,
            }
        )

    def _network(
        self, name: str, args: EksGpuClusterArgs, opts: pulumi.ResourceOptions
    ) -> tuple[pulumi.Output[str], list[pulumi.Output[str]]]:
        net = args.cluster.network
        if net.is_existing:
            return pulumi.Output.from_input(net.vpc_id), [pulumi.Output.from_input(s.id) for s in net.private_subnets]
        vpc = AwsVpc(
            f"{name}-network",
            AwsVpcArgs(
                cluster_name=args.cluster.name,
                region=args.region,
                cidr=net.vpc_cidr,
                zones=net.zones,
                nat_gateways=net.nat_gateways,
            ),
            opts=opts,
        )
        return vpc.vpc_id, vpc.private_subnet_ids

    def _ebs_csi_driver(
        self, name: str, cluster: aws.eks.Cluster, partition: str, pod_identity_agent: aws.eks.Addon
    ) -> aws.eks.Addon:
        """EKS ships no block-storage provisioner: Prometheus and Alertmanager volumes need this one."""
        role = aws.iam.Role(
            f"{name}-ebs-csi",
            assume_role_policy=_assume_role_policy("pods.eks.amazonaws.com", ["sts:AssumeRole", "sts:TagSession"]),
            opts=pulumi.ResourceOptions(parent=self),
        )
        attachment = aws.iam.RolePolicyAttachment(
            f"{name}-ebs-csi",
            role=role.name,
            policy_arn=_managed_policy(partition, "service-role/AmazonEBSCSIDriverPolicy"),
            opts=pulumi.ResourceOptions(parent=self),
        )
        return aws.eks.Addon(
            f"{name}-ebs-csi",
            cluster_name=cluster.name,
            addon_name="aws-ebs-csi-driver",
            pod_identity_associations=[
                aws.eks.AddonPodIdentityAssociationArgs(role_arn=role.arn, service_account="ebs-csi-controller-sa")
            ],
            resolve_conflicts_on_create="OVERWRITE",
            resolve_conflicts_on_update="OVERWRITE",
            opts=pulumi.ResourceOptions(parent=self, depends_on=[pod_identity_agent, attachment]),
        )

    def _admin_access(self, name: str, cluster: aws.eks.Cluster, arn: str, partition: str) -> None:
        # Named by a hash of the ARN, not its list position, so reordering the list replaces nothing.
        suffix = hashlib.sha256(arn.encode()).hexdigest()[:8]
        entry = aws.eks.AccessEntry(
            f"{name}-admin-{suffix}",
            cluster_name=cluster.name,
            principal_arn=arn,
            type="STANDARD",
            opts=pulumi.ResourceOptions(parent=self),
        )
        aws.eks.AccessPolicyAssociation(
            f"{name}-admin-{suffix}",
            cluster_name=cluster.name,
            principal_arn=arn,
            policy_arn=f"arn:{partition}:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy",
            access_scope=aws.eks.AccessPolicyAssociationAccessScopeArgs(type="cluster"),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[entry]),
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
        ),
        opts=pulumi.ResourceOptions(providers=[aws_provider]),
    )
    return cluster.contract
