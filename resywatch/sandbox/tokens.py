"""JWT-shaped auth tokens and the opaque book tokens, signed with HMAC-SHA256.

Real Resy signs its JWTs with ES256; clients only decode the payload (to read ``exp``), never
verify the signature, so HS256 from the standard library gives them the same shape.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any

#: Key that signs the demo token and, by default, every token a sandbox mints.
DEMO_SIGNING_KEY = b"resywatch-sandbox-signing-key"
DEMO_USER_ID = 4815162
DEMO_GUEST_ID = 90817263
#: 2100-01-01T00:00:00Z: the demo token must outlive any test or demo.
DEMO_TOKEN_EXP = 4102444800
DEMO_TOKEN_IAT = 1735689600


def b64url_encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(key: bytes, message: str) -> str:
    return b64url_encode(hmac.new(key, message.encode("ascii"), hashlib.sha256).digest())


def _compact(obj: object) -> bytes:
    return json.dumps(obj, separators=(",", ":"), sort_keys=True).encode()


def mint_jwt(
    key: bytes, *, uid: int, guest_id: int, iat: int, exp: int, jti: int | None = None
) -> str:
    """A ``header.payload.signature`` token with the claims Resy's tokens carry.

    ``jti`` keeps two tokens minted in the same second distinct (a revoked token must not come
    back from a later login while the sandbox clock is frozen).
    """
    header = b64url_encode(_compact({"alg": "HS256", "typ": "JWT"}))
    claims: dict[str, object] = {
        "exp": exp,
        "extra": {"guest_id": guest_id},
        "gs": [],
        "gt": "consumer",
        "iat": iat,
        "lang": "en-us",
        "uid": uid,
    }
    if jti is not None:
        claims["jti"] = jti
    signing_input = f"{header}.{b64url_encode(_compact(claims))}"
    return f"{signing_input}.{_sign(key, signing_input)}"


def jwt_claims(token: str, key: bytes) -> dict[str, Any] | None:
    """The claims of a token signed with ``key``, or None if it is malformed or forged."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    signing_input = f"{parts[0]}.{parts[1]}"
    if not hmac.compare_digest(_sign(key, signing_input), parts[2]):
        return None
    try:
        claims = json.loads(b64url_decode(parts[1]))
    except (ValueError, binascii.Error):
        return None
    return claims if isinstance(claims, dict) else None


def unverified_exp(token: str) -> float | None:
    """The ``exp`` claim of any JWT-shaped token, signature unchecked (as clients read it)."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        claims = json.loads(b64url_decode(parts[1]))
    except (ValueError, binascii.Error):
        return None
    exp = claims.get("exp") if isinstance(claims, dict) else None
    return float(exp) if isinstance(exp, int | float) else None


DEMO_AUTH_TOKEN = mint_jwt(
    DEMO_SIGNING_KEY,
    uid=DEMO_USER_ID,
    guest_id=DEMO_GUEST_ID,
    iat=DEMO_TOKEN_IAT,
    exp=DEMO_TOKEN_EXP,
)


@dataclass(frozen=True, slots=True)
class BookTokenClaims:
    """What a book token from `/3/details` promises: this slot, this party, until ``expires``."""

    venue_id: int
    day: str
    time: str
    party_size: int
    seating: str
    uid: int
    expires: float


def mint_book_token(key: bytes, claims: BookTokenClaims) -> str:
    """Opaque and ``|``-separated like Resy's, so clients must URL-encode it in the book form."""
    body = _compact(
        [
            claims.venue_id,
            claims.day,
            claims.time,
            claims.party_size,
            claims.seating,
            claims.uid,
            claims.expires,
        ]
    )
    payload = f"{b64url_encode(body)}|{int(claims.expires)}"
    return f"{payload}|{_sign(key, payload)[:22]}"


def parse_book_token(key: bytes, token: str) -> BookTokenClaims | None:
    parts = token.split("|")
    if len(parts) != 3:
        return None
    payload = f"{parts[0]}|{parts[1]}"
    if not hmac.compare_digest(_sign(key, payload)[:22], parts[2]):
        return None
    try:
        venue_id, day, time, party_size, seating, uid, expires = json.loads(b64url_decode(parts[0]))
        return BookTokenClaims(
            int(venue_id), str(day), str(time), int(party_size), str(seating), int(uid), expires
        )
    except (ValueError, TypeError, binascii.Error):
        return None


def mint_refresh_token(key: bytes, *, uid: int, exp: int, nonce: int) -> str:
    payload = b64url_encode(_compact([uid, exp, nonce]))
    return f"{payload}.{_sign(key, 'refresh.' + payload)}"


def parse_refresh_token(key: bytes, token: str) -> tuple[int, float] | None:
    """(uid, exp) of a refresh token this key signed, else None."""
    payload, _, signature = token.partition(".")
    if not signature or not hmac.compare_digest(_sign(key, "refresh." + payload), signature):
        return None
    try:
        uid, exp, _nonce = json.loads(b64url_decode(payload))
        return int(uid), float(exp)
    except (ValueError, TypeError, binascii.Error):
        return None
