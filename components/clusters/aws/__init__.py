"""EKS: the cluster and its node groups (`cluster.py`), the VPC (`network.py`), IAM helpers
(`iam.py`), Karpenter and its controller policy (`karpenter.py`, `karpenter_iam.py`), and the
shared-weights EFS with its CSI driver (`storage.py`).
"""
