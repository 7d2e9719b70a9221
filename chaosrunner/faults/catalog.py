"""The fault catalog as data: each kind with its params and selector documented.

``chaosrunner faults`` prints this; the docs and the JSON Schema say the same
because all three read the kind's own models.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from chaosrunner.durations import DurationJsonSchema
from chaosrunner.faults.registry import FaultRegistry, registry


class FieldDoc(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    type: str
    required: bool
    default: Any = None
    description: str = ""


class KindDoc(BaseModel):
    model_config = ConfigDict(frozen=True)

    kind: str
    summary: str
    params: list[FieldDoc]
    selector: list[FieldDoc] | None


def _type_name(schema: dict[str, Any]) -> str:
    if "enum" in schema:
        return " | ".join(repr(value) for value in schema["enum"])
    if "const" in schema:
        return repr(schema["const"])
    if "anyOf" in schema:
        return " | ".join(_type_name(option) for option in schema["anyOf"])
    if "$ref" in schema:
        return schema["$ref"].rsplit("/", 1)[-1]
    kind = schema.get("type", "any")
    if kind == "array":
        return f"list[{_type_name(schema.get('items', {}))}]"
    if kind == "object" and "additionalProperties" in schema:
        return f"map[string, {_type_name(schema['additionalProperties'])}]"
    if kind == "string" and "pattern" in schema and "examples" in schema:
        return "duration"
    return {
        "string": "str",
        "integer": "int",
        "number": "float",
        "boolean": "bool",
        "null": "null",
    }.get(kind, kind)


def describe_model(model: type[BaseModel]) -> list[FieldDoc]:
    """One entry per field; types and defaults as the JSON Schema spells them."""
    properties = model.model_json_schema(by_alias=True, schema_generator=DurationJsonSchema).get(
        "properties", {}
    )
    docs = []
    for name, field in model.model_fields.items():
        key = field.alias or name
        schema = properties.get(key, {})
        docs.append(
            FieldDoc(
                name=key,
                type=_type_name(schema),
                required=field.is_required(),
                default=schema.get("default"),
                description=field.description or "",
            )
        )
    return docs


def catalog(source: FaultRegistry = registry) -> list[KindDoc]:
    return [
        KindDoc(
            kind=fault_class.kind,
            summary=fault_class.summary,
            params=describe_model(fault_class.Params),
            selector=describe_model(fault_class.Selector) if fault_class.Selector else None,
        )
        for fault_class in source
    ]
