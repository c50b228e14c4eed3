"""Routing by model name: one Gateway for the stack, body-based routing, and per model an endpoint
picker with its InferencePool and an HTTPRoute. Cloud-neutral: the cloud hands over how it runs the
gateway (`ClusterContract.gateway`)."""
