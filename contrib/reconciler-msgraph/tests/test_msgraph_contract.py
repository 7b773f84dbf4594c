"""The provider's side of the contract: the answers and requests transcribed from Graph's
reference (`reconciler_msgraph/contract/`, each naming its page) are what the provider
reads and sends. The kit replays the same fixtures against the simulator."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import httpx
from reconciler_msgraph.connection import GRAPH_URL
from reconciler_msgraph.facts import sku_of, user_of
from reconciler_msgraph.provider import GraphProvider, describe
from reconciler_msgraph.requests import Assignment, batch_call

from reconciler.http import VendorHttp, new_client
from reconciler.model import Call
from reconciler.secrets import Secrets
from reconciler.testing.properties import shape_mismatch


def fixture(name: str) -> dict[str, Any]:
    text = resources.files("reconciler_msgraph").joinpath("contract", name).read_text()
    loaded: dict[str, Any] = json.loads(text)
    assert loaded["source"]
    return loaded


def test_the_documented_sku_list_reads_as_a_pool():
    row = fixture("subscribedskus_list.json")["response"]["body"]["value"][0]
    sku = sku_of(row)
    assert (sku.part_number, sku.enabled, sku.consumed) == ("ENTERPRISEPREMIUM", 25, 14)
    assert sku.plans == {"ADALLOM_S_O365": "8c098270-9dd4-4350-9b30-ba4703f3b36b"}


def test_a_documented_user_without_licence_states_holds_its_licences_directly():
    row = fixture("users_list_select.json")["response"]["body"]["value"][0]
    holder = user_of(row, row["userPrincipalName"])
    assert holder.direct == {"c7df2760-2c81-4ef7-b578-5b5392b571df": []}
    assert holder.inherited == {}


def test_the_documented_next_link_is_followed_on_graph_s_own_host():
    body = fixture("users_list_select.json")["response"]["body"]
    client = new_client(GRAPH_URL)
    connection = GraphProvider.connection_model.model_validate(
        {"tenant_env": "T", "client_id_env": "C", "client_secret_env": "S"})
    provider = GraphProvider(connection, VendorHttp(client), Secrets({}))
    call = provider._next_call(body["@odata.nextLink"])
    assert call.path == ("users",)
    assert call.query_value("$skiptoken") == "RFNwdAIAAQAAAD8..."
    assert call.query_value("$select") == "id,userPrincipalName,assignedLicenses"


def test_assign_license_requests_have_the_documented_shape():
    documented = fixture("user_assignlicense.json")["request"]["body"]
    sent = Assignment("user", "87d349ed", {"f8a1db68": ["70d33638"]}, ["6fd2c87f"]).body()
    assert shape_mismatch(documented, sent) is None
    assert set(sent) == set(documented)
    group = fixture("group_assignlicense.json")["request"]
    call = Assignment("group", "5b08a9ea-1568-5211-8792-97d7cc1bff7a", {}, []).call()
    assert call.method == "POST"
    assert "/" + "/".join(call.path) == group["path"].removeprefix("/v1.0")


def test_batch_requests_have_the_documented_shape():
    documented = fixture("batch.json")["request"]["body"]["requests"][1]
    call = batch_call([Assignment("user", "a/b?c", {}, ["6fd2c87f"])])
    item = call.body["requests"][0]
    assert set(item) == set(documented) and item["url"] == "/users/a%2Fb%3Fc/assignLicense"
    assert call == Call.to("POST", "$batch", body=call.body)


def test_the_documented_error_envelope_is_described_in_one_line():
    documented = fixture("user_assignlicense_no_usage_location.json")["response"]
    response = httpx.Response(documented["status"], json=documented["body"])
    assert describe(response) == ("Graph Request_BadRequest: License assignment cannot be "
                                  "done for user with invalid usage location. (HTTP 400)")
