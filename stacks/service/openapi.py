"""The portal's OpenAPI document, as precise as the requests are.

The request models keep `config` and `secrets` as plain objects so that a wrong config is answered
by the stack-file validator (errors at JSON Pointers, in the words `pulumi preview` would use), not
by FastAPI's. The document still has to say what a valid body is: a client generating a form, or a
scanner generating requests, learns it only from here. So the stack config's own JSON Schema
replaces `config` (its credentials excepted: they belong in `secrets`), and `secrets` lists the
credentials, each a string.
"""

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from components.config.stack import SECRET_KEYS, StackConfig

REF_TEMPLATE = "#/components/schemas/{model}"
BODY_SCHEMAS = ("EnvironmentRequest", "ValidateRequest")


def config_schemas() -> tuple[dict[str, Any], dict[str, Any], dict[str, dict[str, Any]]]:
    """(config, secrets, the config's definitions), with references into the document's components."""
    schema = StackConfig.model_json_schema(by_alias=True, ref_template=REF_TEMPLATE)
    definitions = schema.pop("$defs", {})
    properties = schema["properties"]
    secrets = {
        "type": "object",
        "properties": {key: {"type": "string", "description": properties[key].get("description", "")} for key in sorted(SECRET_KEYS)},
        "additionalProperties": False,
    }
    schema["properties"] = {key: value for key, value in properties.items() if key not in SECRET_KEYS}
    schema["required"] = [key for key in schema.get("required", []) if key not in SECRET_KEYS]
    return schema, secrets, definitions


def portal_openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document with the bodies' `config` and `secrets` described exactly (cached, as
    FastAPI caches its own)."""
    if app.openapi_schema is not None:
        return app.openapi_schema
    document = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    components = document.setdefault("components", {}).setdefault("schemas", {})
    config, secrets, definitions = config_schemas()
    clashes = sorted(set(definitions) & set(components))
    if clashes:
        raise RuntimeError(f"config definitions clash with the API's own schemas: {clashes}")
    components.update(definitions)
    components["StackConfigRequest"] = {**config, "title": "StackConfigRequest"}
    for name in BODY_SCHEMAS:
        properties = components[name]["properties"]
        properties["config"] = {"$ref": REF_TEMPLATE.format(model="StackConfigRequest"), "description": properties["config"].get("description", "")}
        properties["secrets"] = {**secrets, "description": properties["secrets"].get("description", "")}
    _link_operations(document)
    app.openapi_schema = document
    return document


_FOLLOW_UPS = {  # link name: (path, method, the parameter, where its value is)
    "operation": ("/v1/operations/{op_id}", "get", "op_id", "$response.body#/id"),
    "events": ("/v1/operations/{op_id}/events", "get", "op_id", "$response.body#/id"),
    "cancel": ("/v1/operations/{op_id}/cancel", "post", "op_id", "$response.body#/id"),
    "environment": ("/v1/environments/{name}", "get", "name", "$request.path.name"),
}


def _link_operations(document: dict[str, Any]) -> None:
    """OpenAPI links from each started operation (202) to where it is followed: its state, its
    events, its cancel, and the environment. Clients and stateful scanners then know that an
    operation id comes from a 202, not from nowhere."""
    paths = document["paths"]
    links = {
        name: {"operationId": paths[path][method]["operationId"], "parameters": {parameter: value}}
        for name, (path, method, parameter, value) in _FOLLOW_UPS.items()
    }
    for path, operations in paths.items():
        if path.startswith("/v1/environments/{name}/"):
            accepted = operations["post"]["responses"]["202"]
            accepted["links"] = links
