"""Clusters behind one contract (`contract.py`), one package per cloud (`aws/`), and `build.py`,
which picks the cloud. Each cloud package builds its own add-ons (Karpenter and EFS on AWS) and
hands their results on through the contract. Never imports `addons/` or `serving/`.
"""
