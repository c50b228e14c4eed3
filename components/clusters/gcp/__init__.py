"""GKE: the cluster and its node pools (`cluster.py`), the VPC with Cloud NAT (`network.py`), the
nodes' service account (`iam.py`), and the shared-weights Filestore storage class (`storage.py`).
"""
