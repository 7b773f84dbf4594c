"""The `*_env` convention, parsed in one place.

A connection setting whose name ends in `_env` holds the *name* of an environment
variable, never a value: `api_key_env: YEXT_API_KEY`. Those ending in `url_env` name
a URL (a base URL may fall back to the vendor's default); the others name secrets,
which must be set.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

ENV_SUFFIX = "_env"
URL_SUFFIX = "url_env"
BASE_URL_SETTING = "base_url_env"


def is_env_setting(key: str) -> bool:
    return key.endswith(ENV_SUFFIX)


def is_url_setting(key: str) -> bool:
    return key.endswith(URL_SUFFIX)


def secret_settings(connection: Mapping[str, Any]) -> dict[str, str]:
    """Setting → variable name, for every `*_env` setting that names a secret."""
    return {key: value for key, value in sorted(connection.items())
            if is_env_setting(key) and not is_url_setting(key) and isinstance(value, str)}


def url_settings(connection: Mapping[str, Any]) -> dict[str, str]:
    """Setting → variable name, for every `*url_env` setting."""
    return {key: value for key, value in sorted(connection.items())
            if is_url_setting(key) and isinstance(value, str)}


def conventional_variable(provider: str, setting: str) -> str:
    """`yext` + `api_key_env` → `YEXT_API_KEY`: the name `import` writes by default."""
    return f"{provider}_{setting.removesuffix(ENV_SUFFIX)}".upper()
