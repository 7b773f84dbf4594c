"""Connection errors say what to fix: the host, and where its URL came from."""

from __future__ import annotations

import socket

import httpx

from reconciler.http import failure_reason, origin_of, unreachable
from reconciler.pipeline import _origins
from reconciler.secrets import Secrets

CONNECTION = {"base_url_env": "ACME_BASE_URL", "management_url_env": "ACME_MANAGEMENT_URL"}


def test_a_url_from_a_variable_is_named_by_that_variable():
    secrets = Secrets(environ={"ACME_BASE_URL": "http://127.0.0.1:9/api",
                               "ACME_MANAGEMENT_URL": "https://mgmt.example"})
    origins = _origins(CONNECTION, "http://127.0.0.1:9/api", secrets, sandboxed=False)
    assert origins == {"http://127.0.0.1:9": "from ACME_BASE_URL",
                       "https://mgmt.example:443": "from ACME_MANAGEMENT_URL"}


def test_without_the_variable_the_vendors_default_url_is_named():
    origins = _origins(CONNECTION, "https://api.acme.example", Secrets(environ={}),
                       sandboxed=False)
    assert origins == {"https://api.acme.example:443": "the vendor's default URL"}
    assert _origins(CONNECTION, "http://acme.sandbox", Secrets(environ={}), sandboxed=True) \
        == {"http://acme.sandbox:80": "the in-process sandbox"}


def test_the_reason_is_the_one_behind_httpxs_wrapper():
    def wrapped(cause: BaseException) -> httpx.ConnectError:
        try:
            try:
                raise cause
            except OSError as inner:
                raise httpx.ConnectError("All connection attempts failed") from inner
        except httpx.ConnectError as error:
            return error

    refused = wrapped(ConnectionRefusedError(111, "Connect call failed"))
    assert unreachable(origin_of("http://127.0.0.1:9/x"), "from ACME_BASE_URL", refused) == \
        "cannot reach http://127.0.0.1:9 (from ACME_BASE_URL): connection refused"
    unknown = wrapped(socket.gaierror(-2, "Name or service not known"))
    assert failure_reason(unknown) == "host not found (Name or service not known)"
    assert failure_reason(httpx.ReadTimeout("")) == "no answer in time (ReadTimeout)"
