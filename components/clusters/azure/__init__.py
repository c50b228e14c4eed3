"""AKS: the cluster and its agent pools (`cluster.py`), the VNet (`network.py`), and the
shared-weights Azure Files NFS account and storage class (`storage.py`).
"""
