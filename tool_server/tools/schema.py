"""JSON Schemas for tools, shaped for LLM readers and every tool-calling format."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

__all__ = ["llm_input_schema", "output_schema"]


def _inline(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, dict):
        if "$ref" in node:
            target = defs[node["$ref"].rsplit("/", 1)[-1]]
            merged = {**_inline(target, defs), **{k: v for k, v in node.items() if k != "$ref"}}
            return _inline(merged, defs)
        return {key: _inline(value, defs) for key, value in node.items() if key != "$defs"}
    if isinstance(node, list):
        return [_inline(item, defs) for item in node]
    return node


def _simplify(node: Any) -> Any:
    """Drop titles and collapse `anyOf: [X, null]` into X: optional means 'leave it out'."""
    if isinstance(node, list):
        return [_simplify(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: _simplify(value) for key, value in node.items() if key != "title"}
    options = node.get("anyOf")
    if isinstance(options, list):
        concrete = [option for option in options if option != {"type": "null"}]
        if len(concrete) == 1 and len(concrete) < len(options):
            node.pop("anyOf")
            node = {**concrete[0], **node}
            if node.get("default", "") is None:
                node.pop("default")
    if node.get("default", "") is None:
        node.pop("default")
    return node


def llm_input_schema(model: type[BaseModel]) -> dict[str, Any]:
    raw = model.model_json_schema(mode="validation")
    schema: dict[str, Any] = _simplify(_inline(raw, raw.get("$defs", {})))
    schema.setdefault("properties", {})
    schema["type"] = "object"
    schema["additionalProperties"] = False
    return schema


def output_schema(model: type[BaseModel]) -> dict[str, Any]:
    raw = model.model_json_schema(mode="serialization")
    schema: dict[str, Any] = _inline(raw, raw.get("$defs", {}))
    return schema
