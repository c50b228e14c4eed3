"""Facts as data, each with its source: GPU instance types per cloud (`gpus.py`), dated prices
(`prices.py`), model architectures (`models.py`), and their `data/` files. No Pulumi, no config.
"""
