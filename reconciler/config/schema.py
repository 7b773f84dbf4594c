"""The JSON Schema of desired-state files, generated from the models that validate them.

Editors (via the `yaml-language-server` modeline in the examples) complete and check
keys with it. Each provider's `connection` block gets that provider's own settings,
taken from its pydantic model, so a typo there is flagged in the editor too.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

from reconciler.config.document import Document

SCHEMA_ID = "https://reconciler.invalid/reconciler.schema.json"


def desired_state_schema(connections: Mapping[str, type[BaseModel]]) -> dict[str, Any]:
    """Document schema with `providers` narrowed to the known ids and their connections."""
    schema = Document.model_json_schema()
    definitions: dict[str, Any] = schema.setdefault("$defs", {})
    block = definitions["ProviderBlock"]
    providers: dict[str, Any] = {}
    for name, model in sorted(connections.items()):
        connection = model.model_json_schema(ref_template="#/$defs/{model}")
        for key, value in connection.pop("$defs", {}).items():
            definitions.setdefault(key, value)
        connection_name = f"{model.__name__}"
        definitions[connection_name] = connection
        specific = copy.deepcopy(block)
        specific["title"] = f"{name} provider"
        specific["properties"]["connection"] = {"$ref": f"#/$defs/{connection_name}"}
        definitions[f"{connection_name}Block"] = specific
        providers[name] = {"$ref": f"#/$defs/{connection_name}Block"}
    schema["properties"]["providers"] = {
        "type": "object", "properties": providers, "additionalProperties": False,
        "description": "One block per provider id",
    }
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = SCHEMA_ID
    schema["title"] = "reconciler desired state"
    return schema
