"""The JSON Schema of desired-state files, generated from the models that validate them.

Editors (via the `yaml-language-server` modeline in the examples) complete and check
keys with it. Each provider's `connection` block gets that provider's own settings,
taken from its pydantic model, and its subjects the kinds that provider manages, so a
typo or a `user:` under a vendor that only knows devices is flagged in the editor too.
What pydantic checks in code (exactly one subject kind, a non-empty id) is restated
here, because the generated schema cannot see a validator.
"""

from __future__ import annotations

import copy
from collections.abc import Collection, Mapping
from typing import Any

from pydantic import BaseModel

from reconciler.config.document import Document
from reconciler.model import SUBJECT_KINDS

SCHEMA_ID = "https://reconciler.invalid/reconciler.schema.json"
_SUBJECT_ID = {"type": "string", "minLength": 1, "pattern": r"\S",
               "description": "The subject's id at the vendor"}


def desired_state_schema(
    connections: Mapping[str, type[BaseModel]],
    subject_kinds: Mapping[str, Collection[str]] | None = None,
) -> dict[str, Any]:
    """Document schema with `providers` narrowed to the known ids and their connections."""
    schema = Document.model_json_schema()
    definitions: dict[str, Any] = schema.setdefault("$defs", {})
    _one_subject_kind(definitions["SubjectEntry"])
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
        kinds = sorted((subject_kinds or {}).get(name, ()))
        if kinds:
            specific["properties"]["subjects"]["items"] = {
                "$ref": "#/$defs/SubjectEntry",
                "anyOf": [{"required": [kind]} for kind in kinds],
                "description": f"A subject of kind {' or '.join(kinds)}",
            }
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


def _one_subject_kind(entry: dict[str, Any]) -> None:
    """A subject names exactly one kind, with a non-empty id (SubjectEntry's validator)."""
    for kind in SUBJECT_KINDS:
        title = entry["properties"][kind].get("title", kind.title())
        entry["properties"][kind] = {**_SUBJECT_ID, "title": title}
    entry["oneOf"] = [{"required": [kind]} for kind in SUBJECT_KINDS]
