"""The API key on every path vLLM serves, not only the ones it guards itself.

vLLM 0.33.0 checks `VLLM_API_KEY` only for paths under `/v1`, `/v2`, `/inference` and `/cohere`
(`entrypoints/serve/middleware/authenticate.py`, GUARDED_PREFIX). The same server registers
`/invocations` (SageMaker: chat and completions by request shape), `/tokenize`, `/detokenize`,
`/scale_elastic_ep`, `/generative_scoring` and more outside those prefixes, so a client with no key
could still generate. vLLM loads this class with `--middleware llm_platform_api_guard.RequireApiKey`
(`entrypoints/serve/middleware/register.py`: `app.add_middleware(cls)`, no arguments, so the key is
read from the same environment variable vLLM reads).

Open without the key: what the kubelet, Prometheus, the endpoint picker and the load balancer's
health check read, none of which can send it: `/health`, `/ping` (the same check), `/version`, and
`/metrics` with whatever vLLM's mount serves below it. Everything else needs
`Authorization: Bearer <key>`, compared in constant time.

This file is shipped into the pod in a ConfigMap and imported by the vLLM image's Python, so it uses
the standard library only.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os

OPEN_PATHS = frozenset({"/health", "/ping", "/version", "/metrics"})
OPEN_PREFIXES = ("/metrics/",)
KEY_VARIABLE = "VLLM_API_KEY"


def is_open(path: str) -> bool:
    return path in OPEN_PATHS or path.startswith(OPEN_PREFIXES)


class RequireApiKey:
    """Pure ASGI middleware: refuses an HTTP request (401) or a WebSocket (close 1008) without the key."""

    def __init__(self, app) -> None:
        key = os.environ.get(KEY_VARIABLE, "")
        if not key:
            # vLLM would then serve every path open; refuse to start instead.
            raise RuntimeError(f"{KEY_VARIABLE} is not set: the API key guard has no key to check")
        self.app = app
        self._digest = hashlib.sha256(key.encode()).digest()

    def _authorized(self, headers: list[tuple[bytes, bytes]]) -> bool:
        for name, value in headers:
            if name.lower() == b"authorization":
                scheme, _, token = value.decode("latin-1").partition(" ")
                if scheme.lower() == "bearer":
                    return hmac.compare_digest(hashlib.sha256(token.encode("latin-1")).digest(), self._digest)
        return False

    async def __call__(self, scope, receive, send) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket") or scope.get("method") == "OPTIONS":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        root = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root):]
        if is_open(path) or self._authorized(scope.get("headers", [])):
            await self.app(scope, receive, send)
            return
        if kind == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        body = json.dumps({"error": "Unauthorized"}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), (b"www-authenticate", b"Bearer")],
            }
        )
        await send({"type": "http.response.body", "body": body})
