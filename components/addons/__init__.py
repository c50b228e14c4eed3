"""The cloud-neutral add-on layer (`layer.py`): GPU Operator and DCGM (`gpu.py`), KEDA (`keda.py`),
monitoring and dashboards (`monitoring.py`, `dashboards.py`). Sees clusters only through the
contract; imports no cloud package.
"""
