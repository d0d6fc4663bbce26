"""Checking recorded requests and emulator answers against the providers' official specs.

`OpenApi` covers HubSpot, Twilio and Stripe (OpenAPI 3); `Discovery` covers Google's discovery
documents. Each `check_request` returns a list of problems (empty when the spec accepts the
request): unknown method and path, missing required parameters, missing required body fields,
body fields the schema does not know.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from openapi_schema_validator import OAS30Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

from integrations.common.sandbox import RecordedRequest

SPECS = Path(__file__).resolve().parent.parent / "specs"

__all__ = ["SPECS", "Discovery", "OpenApi", "form_to_nested"]


@cache
def _load(relative: str) -> dict[str, Any]:
    return dict(json.loads((SPECS / relative).read_text()))


def _template_regex(template: str) -> re.Pattern[str]:
    pattern = re.sub(r"\\\{[^/]+?\\\}", r"[^/]+", re.escape(template))
    return re.compile(f"^{pattern}$")


def form_to_nested(form: dict[str, Any]) -> dict[str, Any]:
    """Stripe-style bracket keys (`line_items[0][price_data][currency]`) into nested objects."""
    nested: dict[str, Any] = {}
    for key, value in form.items():
        parts = [key.split("[", 1)[0], *re.findall(r"\[([^\]]*)\]", key)]
        node: Any = nested
        for index, part in enumerate(parts):
            last = index == len(parts) - 1
            following = None if last else parts[index + 1]
            child_is_list = following is not None and following.isdigit()
            if isinstance(node, list):
                position = int(part)
                while len(node) <= position:
                    node.append([] if child_is_list else {})
                if last:
                    node[position] = value
                else:
                    node = node[position]
            else:
                if last:
                    node[part] = value
                else:
                    node = node.setdefault(part, [] if child_is_list else {})
    return nested


class OpenApi:
    """One OpenAPI 3 document."""

    def __init__(self, relative_path: str) -> None:
        self.document = _load(relative_path)
        self._registry: Registry[Any] = Registry().with_resource(
            "urn:spec", Resource.from_contents(self.document, default_specification=DRAFT4)
        )

    def operation(self, method: str, path: str) -> tuple[str, dict[str, Any]] | None:
        # Literal segments win over parameters: /v1/customers/search is not /v1/customers/{customer}.
        templates = sorted(self.document["paths"].items(), key=lambda item: item[0].count("{"))
        for template, item in templates:
            if _template_regex(template).match(path) and method.lower() in item:
                return template, dict(item[method.lower()])
        return None

    def resolve(self, node: Any) -> Any:
        while isinstance(node, dict) and "$ref" in node:
            pointer = node["$ref"].removeprefix("#/").split("/")
            target: Any = self.document
            for part in pointer:
                target = target[unquote(part.replace("~1", "/").replace("~0", "~"))]
            node = target
        return node

    def _merged(self, schema: Any) -> dict[str, Any]:
        """Properties and required fields of a schema, through $ref and allOf (anyOf/oneOf: union)."""
        schema = self.resolve(schema)
        if not isinstance(schema, dict):
            return {"properties": {}, "required": [], "open": True}
        properties = dict(schema.get("properties", {}))
        required = list(schema.get("required", []))
        open_ended = bool(schema.get("additionalProperties", True)) or not properties
        for combinator in ("allOf", "anyOf", "oneOf"):
            for part in schema.get(combinator, []):
                merged = self._merged(part)
                properties.update(merged["properties"])
                if combinator == "allOf":
                    required.extend(merged["required"])
                open_ended = open_ended or merged["open"]
        if any(c in schema for c in ("anyOf", "oneOf")):
            open_ended = True
        return {"properties": properties, "required": required, "open": open_ended}

    def _check_body(self, schema: Any, body: Any, where: str, problems: list[str]) -> None:
        merged = self._merged(schema)
        if not isinstance(body, dict):
            return
        for name in merged["required"]:
            if name not in body:
                problems.append(f"{where}: missing required field {name!r}")
        for name, value in body.items():
            if name not in merged["properties"]:
                if not merged["open"]:
                    problems.append(f"{where}: field {name!r} is not in the spec")
                continue
            child = self.resolve(merged["properties"][name])
            if isinstance(value, dict):
                self._check_body(child, value, f"{where}.{name}", problems)
            elif isinstance(value, list) and isinstance(child, dict) and "items" in child:
                for index, item in enumerate(value):
                    if isinstance(item, dict):
                        self._check_body(child["items"], item, f"{where}.{name}[{index}]", problems)

    def check_request(self, request: RecordedRequest, *, form_nesting: bool = False) -> list[str]:
        found = self.operation(request.method, request.path)
        label = f"{request.method} {request.path}"
        if found is None:
            return [f"{label}: no such operation in the spec"]
        _, operation = found
        problems: list[str] = []
        for parameter in operation.get("parameters", []):
            parameter = self.resolve(parameter)
            if parameter.get("in") == "query" and parameter.get("required") and parameter["name"] not in request.query:
                problems.append(f"{label}: missing required query parameter {parameter['name']!r}")
        body_spec = self.resolve(operation.get("requestBody", {}))
        if body_spec.get("required") and request.body in (None, "", {}):
            problems.append(f"{label}: missing required body")
        content = body_spec.get("content", {})
        schema = next((c.get("schema") for c in content.values() if c.get("schema")), None)
        if schema is not None and request.body not in (None, ""):
            body = form_to_nested(request.body) if form_nesting and isinstance(request.body, dict) else request.body
            self._check_body(schema, body, label, problems)
        return problems

    def validate(self, schema_name: str, instance: Any) -> list[str]:
        """Problems with `instance` against `#/components/schemas/<schema_name>`."""
        validator = OAS30Validator({"$ref": f"urn:spec#/components/schemas/{schema_name}"}, registry=self._registry)
        return [
            f"{'/'.join(str(p) for p in error.absolute_path)}: {error.message}"
            for error in validator.iter_errors(instance)
        ]


class Discovery:
    """One Google API discovery document (e.g. Calendar v3)."""

    def __init__(self, relative_path: str) -> None:
        self.document = _load(relative_path)
        self.service_path = "/" + self.document["servicePath"]
        self.methods: list[dict[str, Any]] = []

        def walk(resources: dict[str, Any]) -> None:
            for resource in resources.values():
                self.methods.extend(resource.get("methods", {}).values())
                walk(resource.get("resources", {}))

        walk(self.document["resources"])

    def method(self, http_method: str, path: str) -> dict[str, Any] | None:
        relative = path.removeprefix(self.service_path)
        for method in self.methods:
            if method["httpMethod"] == http_method and _template_regex(method["path"]).match(relative):
                return method
        return None

    def check_request(self, request: RecordedRequest) -> list[str]:
        label = f"{request.method} {request.path}"
        if not request.path.startswith(self.service_path):
            return [f"{label}: outside {self.service_path}"]
        method = self.method(request.method, request.path)
        if method is None:
            return [f"{label}: no such method in the discovery document"]
        problems: list[str] = []
        known = set(method.get("parameters", {})) | set(self.document.get("parameters", {}))
        for name, parameter in method.get("parameters", {}).items():
            if parameter.get("required") and parameter.get("location") == "query" and name not in request.query:
                problems.append(f"{label}: missing required query parameter {name!r}")
        for name in request.query:
            if name not in known:
                problems.append(f"{label}: query parameter {name!r} is not in the discovery document")
        if "request" in method:
            if not isinstance(request.body, dict):
                problems.append(f"{label}: expected a JSON body")
            else:
                self._check_fields(method["request"]["$ref"], request.body, label, problems)
        return problems

    def _check_fields(self, schema_name: str, body: dict[str, Any], where: str, problems: list[str]) -> None:
        properties = self.document["schemas"][schema_name].get("properties", {})
        for name, value in body.items():
            if name not in properties:
                problems.append(f"{where}: field {name!r} is not in {schema_name}")
                continue
            prop = properties[name]
            if isinstance(value, dict) and "$ref" in prop:
                self._check_fields(prop["$ref"], value, f"{where}.{name}", problems)
            elif isinstance(value, list) and "$ref" in prop.get("items", {}):
                for item in value:
                    if isinstance(item, dict):
                        self._check_fields(prop["items"]["$ref"], item, f"{where}.{name}[]", problems)


# -- Microsoft Graph (CSDL) ----------------------------------------------------------------------------

_EDM = "{http://docs.oasis-open.org/odata/ns/edm}"
_ODATA_OPTIONS = frozenset({"$filter", "$expand", "$select", "$top", "$skip", "$orderby", "$count", "$search"})
# Functions of a navigation property that take their own query parameters (Graph documents them;
# the trimmed CSDL keeps the annotation only on event.instances).
_CUSTOM_QUERY = {"calendarView": ("startDateTime", "endDateTime")}


class Csdl:
    """An OData CSDL document (Microsoft Graph's metadata, trimmed to the calendar).

    There is no OpenAPI for Graph here, so requests are checked against the entity model: the path
    is walked from `/me` or `/users/{id}` through navigation properties, keys and bound actions;
    bodies of creates and updates must use the entity type's property names (inherited ones
    included, navigation properties allowed for deep inserts), and action bodies the action's
    parameter names, in PascalCase or camelCase as Graph accepts both. Enum values must be members.
    Types the trimmed document does not hold (e.g. singleValueLegacyExtendedProperty) are not
    looked into. `validate` applies the same property check to an answer of a given type.
    """

    def __init__(self, relative_path: str) -> None:
        import xml.etree.ElementTree as ElementTree  # stdlib; the file is our own copy of the spec

        root = ElementTree.parse(SPECS / relative_path).getroot()
        self.types: dict[str, dict[str, Any]] = {}
        self.enums: dict[str, set[str]] = {}
        self.actions: dict[tuple[str, str], dict[str, str]] = {}
        for node in root.iter():
            name = node.get("Name", "")
            if node.tag in (f"{_EDM}EntityType", f"{_EDM}ComplexType"):
                self.types[f"graph.{name}"] = {
                    "base": node.get("BaseType"),
                    "open": node.get("OpenType") == "true",
                    "properties": {p.get("Name"): p.get("Type") for p in node.findall(f"{_EDM}Property")},
                    "navigation": {p.get("Name"): p.get("Type") for p in node.findall(f"{_EDM}NavigationProperty")},
                }
            elif node.tag == f"{_EDM}EnumType":
                self.enums[f"graph.{name}"] = {m.get("Name", "") for m in node.findall(f"{_EDM}Member")}
            elif node.tag == f"{_EDM}Action" and node.get("IsBound") == "true":
                parameters = {p.get("Name", ""): p.get("Type", "") for p in node.findall(f"{_EDM}Parameter")}
                binding = parameters.pop("bindingParameter")
                self.actions[(name, binding)] = parameters

    def _members(self, type_name: str, kind: str) -> dict[str, str]:
        members: dict[str, str] = {}
        while type_name in self.types:
            members = {**self.types[type_name][kind], **members}
            type_name = self.types[type_name]["base"] or ""
        return members

    def _action(self, name: str, type_name: str) -> dict[str, str] | None:
        while type_name:
            if (name, type_name) in self.actions:
                return self.actions[(name, type_name)]
            type_name = (self.types.get(type_name) or {}).get("base") or ""
        return None

    def target(self, path: str) -> tuple[str, str, bool, dict[str, str] | None, str]:
        """(kind, type, is collection, action parameters, last navigation name) for a Graph path.

        kind is "entity", "collection" or "action"; raises KeyError for a path the model lacks.
        """
        segments = [unquote(s) for s in path.removeprefix("/v1.0/").split("/") if s]
        if segments[:1] == ["me"]:
            rest, current, collection = segments[1:], "graph.user", False
        elif segments[:1] == ["users"] and len(segments) >= 2:
            rest, current, collection = segments[2:], "graph.user", False
        else:
            raise KeyError(f"{path}: not under /me or /users/{{id}}")
        last = "user"
        for segment in rest:
            if collection:
                collection = False  # a key into the collection
                continue
            navigation = self._members(current, "navigation")
            if segment in navigation:
                target = navigation[segment]
                collection = target.startswith("Collection(")
                current = target.removeprefix("Collection(").removesuffix(")")
                last = segment
                continue
            action = self._action(segment, current)
            if action is not None and segment == rest[-1]:
                return "action", current, False, action, segment
            raise KeyError(f"{path}: {current} has no navigation property or action {segment!r}")
        return ("collection" if collection else "entity"), current, collection, None, last

    def check_request(self, request: RecordedRequest) -> list[str]:
        label = f"{request.method} {request.path}"
        try:
            kind, type_name, _, action, last = self.target(request.path)
        except KeyError as error:
            return [str(error)]
        allowed = {
            "entity": {"GET", "PATCH", "DELETE"},
            "collection": {"GET", "POST"},
            "action": {"POST"},
        }[kind]
        if request.method not in allowed:
            return [f"{label}: {request.method} is not an operation on a {kind}"]
        problems: list[str] = []
        custom = _CUSTOM_QUERY.get(last, ()) if kind == "collection" else ()
        for name in request.query:
            if name not in _ODATA_OPTIONS and name not in custom:
                problems.append(f"{label}: query parameter {name!r} is neither an OData option nor one {last} takes")
        for name in custom:
            if request.method == "GET" and name not in request.query:
                problems.append(f"{label}: missing required query parameter {name!r}")
        if kind == "action":
            body = request.body if isinstance(request.body, dict) else {}
            by_lower = {key.lower(): (key, value) for key, value in (action or {}).items()}
            for name, value in body.items():
                if name.lower() not in by_lower:
                    problems.append(f"{label}: {name!r} is not a parameter of {request.path.rsplit('/', 1)[-1]}")
                    continue
                self._check_value(by_lower[name.lower()][1], value, f"{label}.{name}", problems)
        elif request.method in ("POST", "PATCH"):
            if not isinstance(request.body, dict):
                return [*problems, f"{label}: expected a JSON body"]
            self._check_properties(type_name, request.body, label, problems)
        return problems

    def validate(self, type_name: str, instance: Any) -> list[str]:
        """Problems with an answer of `type_name` (e.g. "graph.event"): unknown properties, bad enum values."""
        problems: list[str] = []
        self._check_value(type_name, instance, type_name, problems)
        return problems

    def _check_properties(self, type_name: str, body: dict[str, Any], where: str, problems: list[str]) -> None:
        properties = self._members(type_name, "properties")
        navigation = self._members(type_name, "navigation")
        for name, value in body.items():
            if name.startswith("@odata."):
                continue
            if name in properties:
                self._check_value(properties[name], value, f"{where}.{name}", problems)
            elif name in navigation:
                self._check_value(navigation[name], value, f"{where}.{name}", problems)
            else:
                problems.append(f"{where}: {name!r} is not a property of {type_name}")

    def _check_value(self, type_name: str, value: Any, where: str, problems: list[str]) -> None:
        if value is None:
            return
        if type_name.startswith("Collection("):
            inner = type_name.removeprefix("Collection(").removesuffix(")")
            if not isinstance(value, list):
                problems.append(f"{where}: expected a collection of {inner}")
                return
            for index, item in enumerate(value):
                self._check_value(inner, item, f"{where}[{index}]", problems)
            return
        if type_name in self.enums:
            if not isinstance(value, str) or not set(value.split(",")) <= self.enums[type_name]:
                problems.append(f"{where}: {value!r} is not a member of {type_name}")
            return
        if type_name in self.types:
            if not isinstance(value, dict):
                problems.append(f"{where}: expected an object of {type_name}")
                return
            self._check_properties(type_name, value, where, problems)
            return
        primitive = {"Edm.String": str, "Edm.Boolean": bool, "Edm.Int32": int, "Edm.Double": (int, float)}
        expected = primitive.get(type_name)
        if expected is not None and (not isinstance(value, expected) or (expected is int and isinstance(value, bool))):
            problems.append(f"{where}: {value!r} is not an {type_name}")
