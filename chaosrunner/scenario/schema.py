"""The JSON Schema of scenario files, for editors (``chaosrunner schema``).

Derived from the models, then completed with what only the registry and the
library know: the list of fault kinds, each kind's params and selector (as
``if kind == X then params: ...`` branches, which YAML language servers
understand), and the ``use: NAME`` form of abort conditions.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from chaosrunner.durations import DurationJsonSchema
from chaosrunner.faults.registry import registry
from chaosrunner.scenario.models import MARK_NAMES, AbortCondition, ConditionReference, Scenario

SCHEMA_ID = "https://chaosrunner.dev/schema/scenario-v1.json"


def _definition(model: type[BaseModel], defs: dict[str, Any]) -> dict[str, Any]:
    schema = model.model_json_schema(
        ref_template="#/$defs/{model}", by_alias=True, schema_generator=DurationJsonSchema
    )
    defs.update(schema.pop("$defs", {}))
    return schema


def scenario_json_schema() -> dict[str, Any]:
    schema = Scenario.model_json_schema(
        ref_template="#/$defs/{model}", by_alias=True, schema_generator=DurationJsonSchema
    )
    defs: dict[str, Any] = schema.setdefault("$defs", {})
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = SCHEMA_ID
    schema["title"] = "chaosrunner scenario"

    fault = defs["FaultSpec"]
    fault["properties"]["kind"]["enum"] = registry.kinds()
    fault["properties"]["params"] = {"type": "object"}
    fault["properties"]["selector"] = {"type": ["object", "null"]}
    branches = []
    for fault_class in registry:
        then: dict[str, Any] = {"params": _definition(fault_class.Params, defs)}
        if fault_class.Selector is not None:
            then["selector"] = _definition(fault_class.Selector, defs)
        branches.append(
            {
                "if": {"properties": {"kind": {"const": fault_class.kind}}},
                "then": {"properties": then},
            }
        )
    fault["allOf"] = branches

    defs["ConditionReference"] = _definition(ConditionReference, defs)
    condition_ref = schema["properties"]["abort_conditions"]["items"]
    assert condition_ref == {"$ref": f"#/$defs/{AbortCondition.__name__}"}
    schema["properties"]["abort_conditions"]["items"] = {
        "anyOf": [condition_ref, {"$ref": "#/$defs/ConditionReference"}]
    }
    defs[AbortCondition.__name__]["properties"].pop("origin", None)
    # The loader checks `unless` against the marks; editors can offer them.
    unless = defs["Inject"]["properties"]["unless"]
    unless["anyOf"] = [{"enum": list(MARK_NAMES)}, {"type": "null"}]
    return schema
