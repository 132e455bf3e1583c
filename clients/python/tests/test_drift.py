"""The client against the server's own OpenAPI document: every route the client calls
exists with the method, path and query parameters and body fields it sends, and every
model mirrors its schema field by field."""

import sys
from typing import Any, Dict, Set, Tuple, Union, get_args, get_origin

import httpx
import pytest

from conftest import Server
from flywheel._endpoints import ENDPOINTS
from flywheel.models import SCHEMAS

if sys.version_info >= (3, 11):
    from typing import get_type_hints
else:  # typing's own does not unwrap typing_extensions' NotRequired
    from typing_extensions import get_type_hints


@pytest.fixture(scope="module")
def doc(server: Server) -> Dict[str, Any]:
    document: Dict[str, Any] = httpx.get(f"{server.url}/v1/openapi.json").json()
    return document


def _shape(path: str) -> str:
    """A path with its parameters' names dropped: `/v1/tasks/{}/reviews`."""
    import re

    return re.sub(r"\{[^}]*\}", "{}", path)


def _operation(doc: Dict[str, Any], method: str, path: str) -> Any:
    for p, ops in doc["paths"].items():
        if _shape(p) == _shape(path) and method.lower() in ops:
            return ops[method.lower()]
    return None


def _schema_of(content: Any) -> Any:
    return content.get("content", {}).get("application/json", {}).get("schema") if content else None


def _ref(schema: Any) -> str:
    if schema is None:
        return "none"
    if "$ref" in schema:
        return str(schema["$ref"]).rsplit("/", 1)[1]
    if schema.get("type") == "array" and "$ref" in schema.get("items", {}):
        return _ref(schema["items"]) + "[]"
    if schema.get("type") == "string":  # a file sent as it is
        return "string"
    return "object"


def test_every_route_the_client_calls_is_in_the_document(doc: Dict[str, Any]) -> None:
    schemas = doc["components"]["schemas"]
    for name, ep in ENDPOINTS.items():
        op = _operation(doc, ep.method, ep.path)
        assert op is not None, f"{name}: {ep.method} {ep.path} is not in the server's document"
        params = op.get("parameters", [])
        path_params = [p["name"] for p in params if p["in"] == "path"]
        assert len(path_params) == ep.path.count("{"), name
        query = {p["name"] for p in params if p["in"] == "query"}
        assert set(ep.query) <= query, f"{name}: the server takes no query {set(ep.query) - query}"

        body = _schema_of(op.get("requestBody"))
        if ep.body is None:
            assert body is None or not op["requestBody"].get("required"), f"{name}: the server wants a body"
        else:
            assert body is not None, f"{name}: the server takes no body"
            if ep.body != "object":
                assert _ref(body) == ep.body, name
            resolved = schemas[_ref(body)] if "$ref" in body else body
            props = set(resolved.get("properties", {}))
            if props:
                assert set(ep.sends) <= props, f"{name}: the server does not take {set(ep.sends) - props}"
                missing = set(resolved.get("required", [])) - set(ep.sends)
                assert not missing, f"{name}: the client never sends required {missing}"

        ok = [code for code in op["responses"] if code.startswith("2")]
        assert ok, name
        if ep.returns is not None:
            answers = {_ref(_schema_of(op["responses"][code])) for code in ok}
            assert ep.returns in answers, f"{name}: the server answers {answers}, the client reads {ep.returns}"
            base = ep.returns.removesuffix("[]")
            # A schema that is one of several (`AgreementOut`): a model mirrors each.
            one_of = [_ref(s) for s in schemas.get(base, {}).get("oneOf", [])]
            for b in one_of or [base]:
                assert b == "object" or b in SCHEMAS, f"{name}: no model mirrors {b}"


def _expected(schema: Dict[str, Any]) -> str:
    """A schema as a type name: `Optional[List[int]]`, `Dict[str, float]`, `DecisionOut`."""
    if "$ref" in schema:
        return str(schema["$ref"]).rsplit("/", 1)[1]
    if "oneOf" in schema:
        kinds = [s for s in schema["oneOf"] if s.get("type") != "null"]
        assert len(kinds) == 1 and len(schema["oneOf"]) == 2, schema
        return f"Optional[{_expected(kinds[0])}]"
    t = schema.get("type")
    if isinstance(t, list):
        rest = [x for x in t if x != "null"]
        assert len(rest) == 1, schema
        inner = _expected({**schema, "type": rest[0]})
        return f"Optional[{inner}]" if "null" in t else inner
    if t == "array":
        return f"List[{_expected(schema['items'])}]"
    if t == "object":
        extra = schema.get("additionalProperties")
        return f"Dict[str, {_expected(extra)}]" if isinstance(extra, dict) else "Dict[str, Any]"
    return {"string": "str", "integer": "int", "number": "float", "boolean": "bool"}[str(t)]


def _actual(annotation: Any) -> str:
    """A model's annotation in the same notation, its typed dicts by their schema names."""
    names = {cls: schema for schema, cls in SCHEMAS.items()}
    if annotation in names:
        return names[annotation]
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Union:
        rest = [a for a in args if a is not type(None)]
        return f"Optional[{_actual(rest[0])}]" if len(rest) < len(args) else " | ".join(map(_actual, rest))
    if origin is list:
        return f"List[{_actual(args[0])}]"
    if origin is dict:
        return f"Dict[str, {_actual(args[1])}]"
    if annotation is Any:
        return "Any"
    return str(annotation.__name__)


def _object(schemas: Dict[str, Any], schema: Dict[str, Any]) -> Tuple[Dict[str, Any], Set[str]]:
    """A schema's properties and required fields, with those of an `allOf` (a struct with
    a flattened one, `WebhookWithSecret`) merged."""
    if "$ref" in schema:
        return _object(schemas, schemas[_ref(schema)])
    props: Dict[str, Any] = dict(schema.get("properties", {}))
    required: Set[str] = set(schema.get("required", []))
    for part in schema.get("allOf", []):
        p, r = _object(schemas, part)
        props.update(p)
        required |= r
    return props, required


@pytest.mark.parametrize("schema_name", sorted(SCHEMAS))
def test_each_model_mirrors_its_schema(doc: Dict[str, Any], schema_name: str) -> None:
    model = SCHEMAS[schema_name]
    props, required = _object(doc["components"]["schemas"], doc["components"]["schemas"][schema_name])
    assert props, f"{schema_name} has no fields"
    hints = get_type_hints(model)
    assert set(hints) == set(props), f"{model.__name__}: fields differ from {schema_name}"
    assert set(model.__required_keys__) == required, model.__name__  # type: ignore[attr-defined]
    for field, sub in props.items():
        assert _actual(hints[field]) == _expected(sub), f"{model.__name__}.{field}"
