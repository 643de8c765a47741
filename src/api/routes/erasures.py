"""Erasure on request (GDPR article 17): an operator erases one person's
personal values, by order or by e-mail address."""

from __future__ import annotations

import hashlib
from typing import Any

import msgspec
from litestar import Request, post

from api.documented import ErasureAnswer, errors, shaped
from api.rejections import MalformedBody, Unauthorized
from api.routes.reads import require_token
from api.services import Services

MAX_FIELD_CHARS = 1_000


class ErasureRequest(msgspec.Struct, forbid_unknown_fields=True):
    """Whose data to erase (an order id or an e-mail address), why, and who asks."""

    reason: str
    order_id: str | None = None
    email: str | None = None
    requested_by: str | None = None


@post("/api/v1/erasures", summary="Erase one person's personal data", tags=["personal data"],
      status_code=200,
      responses={**shaped(200, ErasureAnswer, "what was erased (nothing, when done before)"),
                 **errors(400, 401, 404, 413, 500, 503)})  # fmt: skip
async def create_erasure(request: Request[Any, Any, Any]) -> dict[str, Any]:
    services: Services = request.app.state.services
    if not services.operator_tokens.values:
        raise Unauthorized("erasures need an operator token: set HOOKLEDGER_OPERATOR_TOKENS")
    require_token(request, services.operator_tokens)
    asked = _read(await request.body())
    assert services.erase is not None  # set with the operator tokens by the composition root
    token = request.headers.get("authorization", "").partition(" ")[2].strip()
    # Who asked, as the ledger records it: the name given and which operator
    # token was used (a fingerprint: never the token).
    fingerprint = hashlib.sha256(token.encode()).hexdigest()[:12]
    who = f"{asked.requested_by or 'operator'} (token {fingerprint})"
    return await services.erase(asked.order_id, asked.email, asked.reason, who[:200], "api")


def _read(body: bytes) -> ErasureRequest:
    try:
        asked = msgspec.json.decode(body, type=ErasureRequest)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise MalformedBody(f'an erasure is {{"order_id" or "email", "reason"}}: {exc}') from None
    if (asked.order_id is None) == (asked.email is None):
        raise MalformedBody("give exactly one of order_id and email")
    texts = [asked.reason, asked.order_id or "", asked.email or "", asked.requested_by or ""]
    if any(len(t) > MAX_FIELD_CHARS or "\x00" in t for t in texts):
        raise MalformedBody(f"fields are text of at most {MAX_FIELD_CHARS} characters, no NUL")
    if not asked.reason.strip():
        raise MalformedBody("say why: reason must not be empty")
    return asked
