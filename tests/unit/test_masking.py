"""Every secret is masked whatever its length, and so is the userinfo of every URL."""

from __future__ import annotations

import logging
import sys

import httpx

from reconciler.http import VendorHttp, new_client
from reconciler.model import Call, Limits
from reconciler.secrets import MASK, RedactingFilter, Redactor, Secrets


def test_a_short_secret_is_masked_where_it_stands_on_its_own():
    redactor = Redactor()
    Secrets(environ={"PIN": "7x"}, redactor=redactor).get("PIN")
    assert redactor.text("api_key=7x&v=1") == f"api_key={MASK}&v=1"
    assert redactor.text('{"password": "7x"}') == f'{{"password": "{MASK}"}}'
    assert redactor.text("Bearer 7x") == f"Bearer {MASK}"
    assert redactor.text("store-7xl stays readable") == "store-7xl stays readable"


def test_a_one_character_secret_is_masked_too():
    redactor = Redactor()
    redactor.register("Q")
    assert redactor.text("user=admin password=Q") == f"user=admin password={MASK}"


def test_a_long_secret_is_masked_anywhere_and_in_its_url_encoded_forms():
    redactor = Redactor()
    redactor.register("p@ss word/1")
    text = redactor.text("x p@ss word/1 y p%40ss%20word%2F1 z p%40ss+word%2F1 end")
    assert text == f"x {MASK} y {MASK} z {MASK} end"


def test_userinfo_in_any_url_is_masked_without_registration():
    redactor = Redactor()
    assert redactor.text("GET https://ops:s3cret@vendor.test/api failed") == (
        f"GET https://ops:{MASK}@vendor.test/api failed"
    )
    assert redactor.text("https://ghp_token123@github.com/x") == f"https://{MASK}@github.com/x"
    assert redactor.text("mail ops@vendor.test") == "mail ops@vendor.test"


def test_a_password_registered_from_a_url_is_masked_wherever_it_appears():
    redactor = Redactor()
    redactor.register_url("https://ops:hunter2%21@vendor.test")
    assert redactor.text("login hunter2! / hunter2%21") == f"login {MASK} / {MASK}"


async def test_previews_of_a_client_with_userinfo_in_its_base_url_mask_the_password():
    async with new_client("https://ops:hunter2@vendor.test/api",
                          httpx.MockTransport(lambda r: httpx.Response(200))) as client:
        http = VendorHttp(client, Limits())
        preview = http.preview(Call.to("POST", "licenses", "L-1"))
    assert "hunter2" not in preview.url
    assert preview.url.startswith(f"https://ops:{MASK}@vendor.test/api/licenses/L-1")


def test_log_records_are_masked_whatever_logger_made_them():
    redactor = Redactor()
    redactor.register("ab")
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "key %s via %s", ("ab",
                               "https://u:pw@h.test"), None)
    RedactingFilter(redactor).filter(record)
    assert record.getMessage() == f"key {MASK} via https://u:{MASK}@h.test"


def test_journal_rows_hold_no_userinfo(tmp_path):
    from reconciler.journal import Journal
    from tests.unit.test_applier_journal import assign

    action = assign("store-100")
    leaky = action.model_copy(update={"request": action.request.model_copy(
        update={"url": "https://ops:hunter2@vendor.test/v2/x"})})
    with Journal(tmp_path / "journal.db") as journal:
        row = journal.row(leaky, "started", None)
    assert not any("hunter2" in str(field) for field in row)


def test_a_logged_traceback_is_masked_too():
    redactor = Redactor()
    redactor.register("k-secret-1")
    try:
        raise RuntimeError("GET https://vendor.test/x?api_key=k-secret-1 failed")
    except RuntimeError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "boom", (),
                                   sys.exc_info())
    RedactingFilter(redactor).filter(record)
    formatted = logging.Formatter().format(record)
    assert "RuntimeError" in formatted and "k-secret-1" not in formatted
    assert f"api_key={MASK}" in formatted


def test_a_dsn_password_in_the_query_is_masked_in_messages():
    from reconciler.journal.store import mask_dsn

    url = "postgresql://ops@db.test/j?sslmode=require&password=pw-q&sslpassword=key-pw"
    masked = mask_dsn(url)
    assert "pw-q" not in masked and "key-pw" not in masked
    assert "sslmode=require" in masked and "ops@db.test" in masked
