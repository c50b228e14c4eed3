"""What we know about the pinned vLLM: version and image, the flag table (`flags.py`), the
memory profiles by release (`memory_profiles.py`, `data/vllm_memory.yaml`). Serving and the
planner both read it; it reads neither.
"""
