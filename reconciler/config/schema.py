"""The JSON Schema of desired-state files, generated from the models that validate them.

Editors (via the `yaml-language-server` modeline in the examples) complete and check
keys with it. Each provider's `connection` block gets that provider's own settings,
taken from its pydantic model, and its subjects the kinds that provider manages, so a
typo or a `user:` under a vendor that only knows devices is flagged in the editor too.
What the loader checks in code (exactly one subject kind, a non-empty id) is restated
here, because the generated schema cannot see it.
"""

from __future__ import annotations

import copy
from collections.abc import Collection, Mapping
from typing import Any

from pydantic import BaseModel

from reconciler.config.document import Document

SCHEMA_ID = "https://reconciler.invalid/reconciler.schema.json"
_SUBJECT_ID = {"type": "string", "minLength": 1, "description": "The subject's id at the vendor"}
"""Blanks are allowed, as the loader allows them (`id_problem`): vendors hold such ids."""


def desired_state_schema(
    connections: Mapping[str, type[BaseModel]],
    subject_kinds: Mapping[str, Collection[str]],
) -> dict[str, Any]:
    """Document schema with `providers` narrowed to the known ids and their connections."""
    schema = Document.model_json_schema()
    definitions: dict[str, Any] = schema.setdefault("$defs", {})
    entry = definitions.pop("SubjectEntry")
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
        kinds = sorted(subject_kinds.get(name, ()))
        subject_name = f"{connection_name}Subject"
        definitions[subject_name] = _subject_schema(entry, kinds)
        specific["properties"]["subjects"]["items"] = {"$ref": f"#/$defs/{subject_name}"}
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


def _subject_schema(entry: dict[str, Any], kinds: list[str]) -> dict[str, Any]:
    """A subject of this provider: exactly one of its kinds, with a non-empty id.

    The document model accepts any one kind key (the loader checks it against the
    provider); here each provider's subjects list only the kinds it manages.
    """
    subject = copy.deepcopy(entry)
    subject["additionalProperties"] = False
    for kind in kinds:
        subject["properties"][kind] = {**_SUBJECT_ID, "title": kind.title()}
    subject["oneOf"] = [{"required": [kind]} for kind in kinds]
    subject["description"] = f"A subject of kind {' or '.join(kinds)}"
    return subject
