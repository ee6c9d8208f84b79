"""CSRF tokens: an HMAC of the browser's session (or pre-login) cookie under the secret key.

Nothing is stored: the token is derived from a cookie a cross-site page can neither read nor
set, so a form posted from elsewhere cannot carry the right one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac


def csrf_token(secret: str, key: str) -> str:
    digest = hmac.new(secret.encode(), b"csrf|" + key.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def csrf_valid(secret: str, key: str | None, token: str | None) -> bool:
    if not key or not token:
        return False
    return hmac.compare_digest(csrf_token(secret, key), token)
