"""The portal's HTTP API (FastAPI; its OpenAPI document is at /openapi.json).

Every route but /healthz needs `Authorization: Bearer <token>`. Requests are validated in the
request, offline and exactly as `pulumi preview` validates a stack file (422 with JSON Pointers
into the request); operations run in worker processes and answer 202 with an operation id to
follow (`GET /v1/operations/{id}`, or its events as Server-Sent Events).
"""


import asyncio
import hmac
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Header, Path, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from components.config.stack import stack_config_json_schema
from stacks import PROJECT_DIR
from stacks.automation.environment import Environment
from stacks.automation.request import EnvironmentRequest, FieldError, RequestInvalid, json_pointer, validate_request
from stacks.automation.results import FailureKind, OperationFailed
from stacks.stack_files import STACK_NAME_PATTERN

from .json_body import MAX_BODY_BYTES, repeated_keys
from .manager import OperationManager, ServiceSettings, StackBusy
from .openapi import portal_openapi
from .store import TERMINAL_STATES, Store

StackName = Annotated[str, Path(pattern=STACK_NAME_PATTERN, description="The environment's Pulumi stack name")]
OperationId = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$")]
SSE_POLL_SECONDS = 0.25
SSE_KEEPALIVE_SECONDS = 15.0


class ValidateRequest(EnvironmentRequest):
    stack: str = Field(default="portal", pattern=STACK_NAME_PATTERN, description="The stack name the config is for (messages name Pulumi.<stack>.yaml)")


class ErrorBody(BaseModel):
    kind: str
    message: str
    retryable: bool = False
    errors: list[dict[str, str]] = Field(default_factory=list, description="Config errors: pointer (into the request), key, message, text")
    operationId: str | None = None  # noqa: N815 - the API's casing


class ErrorResponse(BaseModel):
    error: ErrorBody


class ValidateResponse(BaseModel):
    valid: Literal[True]
    stack: str
    warnings: list[dict[str, str]]
    models: list[dict[str, Any]]
    cost: dict[str, Any] | None


class OperationResponse(BaseModel):
    id: str
    stack: str
    operation: str
    state: Literal["queued", "running", "succeeded", "failed", "cancelled", "interrupted"]
    createdAt: float  # noqa: N815
    startedAt: float | None  # noqa: N815
    finishedAt: float | None  # noqa: N815
    cancelRequested: bool  # noqa: N815
    summary: dict[str, int] | None
    result: dict[str, Any] | None
    failure: dict[str, Any] | None
    links: dict[str, str]


class EnvironmentResponse(BaseModel):
    stack: str
    outputs: dict[str, Any]
    models: list[dict[str, Any]]
    operations: list[OperationResponse]


def error(status: int, kind: str, message: str, *, retryable: bool = False, errors: list[FieldError] | None = None, operation_id: str | None = None, headers: dict[str, str] | None = None) -> JSONResponse:
    body = ErrorBody(kind=kind, message=message, retryable=retryable, errors=[e.to_dict() for e in errors or []], operationId=operation_id)
    return JSONResponse({"error": body.model_dump(exclude_none=True)}, status_code=status, headers=headers)


_FAILURE_STATUS = {
    FailureKind.NOT_FOUND: 404,
    FailureKind.BUSY: 409,
    FailureKind.CLI_MISSING: 503,
    FailureKind.CLI_TOO_OLD: 503,
}


def failure_response(failure: OperationFailed) -> JSONResponse:
    return error(_FAILURE_STATUS.get(failure.kind, 502), str(failure.kind), failure.message, retryable=failure.retryable)


def operation_body(op: Any) -> dict[str, Any]:
    return {**op.to_dict(), "links": {"self": f"/v1/operations/{op.id}", "events": f"/v1/operations/{op.id}/events", "cancel": f"/v1/operations/{op.id}/cancel"}}


def _validation_pointer(loc: tuple[Any, ...]) -> str:
    where, *rest = loc if loc else ("body",)
    return json_pointer(rest) if where == "body" else json_pointer([where, *rest])


def create_app(settings: ServiceSettings, token: str) -> FastAPI:
    if not token:
        raise ValueError("the service needs an API token")
    store = Store(settings.db_path)
    manager = OperationManager(settings, store)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await asyncio.to_thread(manager.shutdown, min(settings.cancel_grace_seconds, 60.0))

    app = FastAPI(
        title="llm-platform portal API",
        version="1",
        description="Validate, preview, update, refresh and destroy llm-platform environments (Pulumi stacks of this project).",
        lifespan=lifespan,
    )
    app.state.store, app.state.manager = store, manager
    app.openapi = lambda: portal_openapi(app)  # type: ignore[method-assign]
    bearer = HTTPBearer(auto_error=False)
    unauthorized = {"WWW-Authenticate": "Bearer"}

    @app.exception_handler(RequestValidationError)
    async def invalid_body(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [FieldError(_validation_pointer(tuple(e["loc"])), ".".join(map(str, e["loc"])), e["msg"], f"{_validation_pointer(tuple(e['loc']))}: {e['msg']}") for e in exc.errors()]
        return error(422, "invalid", "the request is not valid", errors=errors)

    too_large = f"the request body is larger than {MAX_BODY_BYTES // 1024} KiB; a stack's config is a few KiB"

    @app.middleware("http")
    async def bounded_body(request: Request, call_next: Any) -> Any:
        """Refused before it is read, where the client says its size (FastAPI reads a body whole)."""
        length = request.headers.get("content-length", "")
        if length.isdigit() and int(length) > MAX_BODY_BYTES:
            return error(413, "too-large", too_large)
        return await call_next(request)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        """FastAPI's own refusals in this API's error shape: an unreadable body (400), no such route."""
        if exc.status_code == 400:
            message = "the request body is not JSON this service can read: malformed, not UTF-8, or nested too deeply"
            return error(400, "invalid", message)
        kind = {404: "not-found", 405: "method-not-allowed", 413: "too-large"}.get(exc.status_code, "http-error")
        return error(exc.status_code, kind, str(exc.detail), headers=getattr(exc, "headers", None))

    class RepeatedKeys(Exception):
        def __init__(self, errors: list[FieldError]):
            self.errors = errors

    @app.exception_handler(RepeatedKeys)
    async def repeated(_: Request, exc: RepeatedKeys) -> JSONResponse:
        return error(422, "invalid", "the request is not valid", errors=exc.errors)

    async def keys_given_once(request: Request) -> None:
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:  # sent without a length (chunked)
            raise StarletteHTTPException(413, too_large)
        found = repeated_keys(body)
        if found:
            raise RepeatedKeys(found)

    class Unauthorized(Exception):
        pass

    @app.exception_handler(Unauthorized)
    async def bad_token(_: Request, __: Unauthorized) -> JSONResponse:
        return error(401, "unauthorized", "a valid bearer token is required", headers=unauthorized)

    def authorized(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> None:
        if credentials is None or credentials.scheme.lower() != "bearer" or not hmac.compare_digest(credentials.credentials.encode(), token.encode()):
            raise Unauthorized()

    auth = [Depends(authorized)]
    with_body = [*auth, Depends(keys_given_once)]
    errors_doc: dict[int | str, dict[str, Any]] = {401: {"model": ErrorResponse}, 422: {"model": ErrorResponse}}
    body_doc: dict[int | str, dict[str, Any]] = {
        400: {"model": ErrorResponse, "description": "The body is not JSON this service can read"},
        413: {"model": ErrorResponse, "description": f"The body is larger than {MAX_BODY_BYTES // 1024} KiB"},
        **errors_doc,
    }

    @app.get("/healthz", include_in_schema=True)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/v1/schema", dependencies=auth, responses=errors_doc)
    def schema() -> dict[str, Any]:
        """The JSON Schema of a request's `config` (the stack's `llm-platform:` keys without the prefix)."""
        return stack_config_json_schema()

    @app.post("/v1/validate", dependencies=with_body, response_model=ValidateResponse, responses=body_doc)
    def validate(body: ValidateRequest) -> Any:
        """Offline: the config models, the preflight of what the operators would refuse, and the
        program under the offline runner (each model's predicted capacity, the cost estimate)."""
        request = EnvironmentRequest(config=body.config, secrets=body.secrets)
        try:
            validated = validate_request(body.stack, request)
        except RequestInvalid as exc:
            return error(422, "invalid", f"invalid stack config ({len(exc.errors)} problem(s))", errors=exc.errors)
        return {"valid": True, "stack": body.stack, "warnings": [w.to_dict() for w in validated.warnings], "models": validated.models, "cost": validated.cost}

    def start(name: str, operation: str, request: EnvironmentRequest | None) -> JSONResponse:
        if (PROJECT_DIR / f"Pulumi.{name}.yaml").exists():
            return error(409, "repository-stack", f"{name!r} is one of the repository's stacks (Pulumi.{name}.yaml), deployed by its CI; the portal manages its own environments")
        running = manager.active_operation(name)
        if running is not None:  # before validating: no need to spend the work
            return error(409, "busy", f"stack {name!r} has operation {running} queued or running", retryable=True, operation_id=running)
        validated = None
        if request is not None:
            try:
                validated = validate_request(name, request)
            except RequestInvalid as exc:
                return error(422, "invalid", f"invalid stack config ({len(exc.errors)} problem(s))", errors=exc.errors)
        try:
            op = manager.submit(name, operation, request, validated)
        except StackBusy as exc:
            return error(409, "busy", str(exc), retryable=True, operation_id=exc.operation_id)
        except OperationFailed as exc:
            return error(503, str(exc.kind), exc.message, retryable=True)
        return JSONResponse(operation_body(op), status_code=202, headers={"Location": f"/v1/operations/{op.id}"})

    accepted: dict[int | str, dict[str, Any]] = {
        202: {"model": OperationResponse},
        409: {"model": ErrorResponse},
        503: {"model": ErrorResponse, "description": "The Pulumi CLI is missing or too old; retryable"},
        **errors_doc,
    }
    accepted_with_body = {**accepted, **body_doc}

    @app.post("/v1/environments/{name}/preview", dependencies=with_body, status_code=202, response_model=OperationResponse, responses=accepted_with_body)
    def preview(name: StackName, body: EnvironmentRequest) -> Any:
        """Write the request's config to the stack (created if new), then `pulumi preview`."""
        return start(name, "preview", body)

    @app.post("/v1/environments/{name}/up", dependencies=with_body, status_code=202, response_model=OperationResponse, responses=accepted_with_body)
    def up(name: StackName, body: EnvironmentRequest) -> Any:
        """Write the request's config to the stack (created if new), then `pulumi up`."""
        return start(name, "up", body)

    @app.post("/v1/environments/{name}/refresh", dependencies=auth, status_code=202, response_model=OperationResponse, responses=accepted)
    def refresh(name: StackName) -> Any:
        """`pulumi refresh` with the stack's stored config."""
        return start(name, "refresh", None)

    @app.post("/v1/environments/{name}/destroy", dependencies=auth, status_code=202, response_model=OperationResponse, responses=accepted)
    def destroy(name: StackName) -> Any:
        """`pulumi destroy` of every resource of the stack (the stack itself is kept, with its history)."""
        return start(name, "destroy", None)

    @app.get("/v1/environments/{name}", dependencies=auth, response_model=EnvironmentResponse, responses={404: {"model": ErrorResponse}, 503: {"model": ErrorResponse}, **errors_doc})
    def environment(name: StackName) -> Any:
        """The stack's outputs (secret ones as "[secret]"), each model's endpoint, and its recent operations."""
        try:
            result = Environment(name, settings.environment_options()).outputs()
        except OperationFailed as exc:
            return failure_response(exc)
        models = result.to_dict()["models"]
        return {"stack": name, "outputs": result.outputs, "models": models, "operations": [operation_body(op) for op in store.for_stack(name)]}

    @app.get("/v1/operations/{op_id}", dependencies=auth, response_model=OperationResponse, responses={404: {"model": ErrorResponse}, **errors_doc})
    def operation(op_id: OperationId) -> Any:
        op = store.get(op_id)
        if op is None:
            return error(404, "not-found", f"no operation {op_id}")
        return operation_body(op)

    @app.post("/v1/operations/{op_id}/cancel", dependencies=auth, status_code=202, response_model=OperationResponse, responses={404: {"model": ErrorResponse}, 409: {"model": ErrorResponse}, **errors_doc})
    def cancel(op_id: OperationId) -> Any:
        """Queued: it never starts. Running: the CLI is interrupted and stops after its in-flight steps."""
        op = store.get(op_id)
        if op is None:
            return error(404, "not-found", f"no operation {op_id}")
        if not op.active:
            return error(409, "finished", f"operation {op_id} has already ended ({op.state})", operation_id=op_id)
        return JSONResponse(operation_body(manager.cancel(op_id)), status_code=202)

    @app.get(
        "/v1/operations/{op_id}/events",
        dependencies=auth,
        responses={200: {"content": {"text/event-stream": {}}, "description": "Server-Sent Events: `id` is the event's sequence number, `event` its kind, `data` its JSON; the stream ends after the operation's final state"}, 404: {"model": ErrorResponse}, **errors_doc},
    )
    async def events(op_id: OperationId, last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None) -> Any:
        """The operation's events from the start, or after `Last-Event-ID` (a reconnecting client resumes where it stopped)."""
        if await asyncio.to_thread(store.get, op_id) is None:
            return error(404, "not-found", f"no operation {op_id}")
        after = int(last_event_id) if last_event_id and last_event_id.strip().isdigit() else 0
        return StreamingResponse(_event_stream(store, op_id, after), media_type="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    return app


async def _event_stream(store: Store, op_id: str, after: int) -> AsyncIterator[str]:
    seq, idle = after, 0.0
    while True:
        batch = await asyncio.to_thread(store.events_after, op_id, seq)
        for seq, data in batch:
            yield f"id: {seq}\nevent: {data['kind']}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"
        if batch:
            idle = 0.0
            continue
        op = await asyncio.to_thread(store.get, op_id)
        if op is None or op.state in TERMINAL_STATES:
            if not await asyncio.to_thread(store.events_after, op_id, seq):
                return
            continue
        await asyncio.sleep(SSE_POLL_SECONDS)
        idle += SSE_POLL_SECONDS
        if idle >= SSE_KEEPALIVE_SECONDS:
            idle = 0.0
            yield ": keep-alive\n\n"
