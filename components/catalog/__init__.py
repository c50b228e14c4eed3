"""Facts as data, each with its source: GPU instance types per cloud (`gpus.py`), dated prices
(`prices.py`), model architectures (`models.py`), the images the program deploys (`images.py`), and
their `data/` files. No Pulumi, no config.
"""
