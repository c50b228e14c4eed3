"""Model services: `ModelServices` (`models.py`), `VllmModelService` (`service.py`), the vLLM pod
(`pod.py`), the weight download (`weights.py`), scaling signals and alerts (`signals.py`).
Imports no cloud package.
"""
