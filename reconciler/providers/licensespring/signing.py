"""The License API's request signature, as the vendor documents and the official SDK sends it.

`Date` (RFC 7231) and `Authorization: algorithm="hmac-sha256",headers="date",
signature="<base64 HMAC-SHA256(shared_key, 'licenseSpring\\ndate: ' + Date)>",
apiKey="<api key>"`. The Date is part of what is signed, so every call signs anew,
at send time: a signature never sits in a plan.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from email.utils import formatdate


def sign(shared_key: str, date: str) -> str:
    """Base64 HMAC-SHA256 of `licenseSpring\\ndate: <Date>`, keyed with the shared key."""
    message = f"licenseSpring\ndate: {date}".encode()
    digest = hmac.new(shared_key.encode(), message, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def signed_headers(api_key: str, shared_key: str, date: str | None = None) -> dict[str, str]:
    """The headers of one License API call (fresh Date unless one is given, for tests)."""
    date = date or formatdate(usegmt=True)
    authorization = ",".join([
        'algorithm="hmac-sha256"', 'headers="date"', f'signature="{sign(shared_key, date)}"',
        f'apiKey="{api_key}"'])
    return {"Date": date, "Authorization": authorization, "Accept": "application/json"}
