"""What an auditor who distrusts the operator asks for: signed checkpoints of the
ledger's Merkle tree, the key that signs them, inclusion and consistency proofs,
and an order's offline evidence. Same bearer token as the audit read."""

from __future__ import annotations

import base64
from typing import Annotated, Any

from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from litestar import Request, get
from litestar.params import FromPath, QueryParameter

from api.documented import errors
from api.rejections import BadQuery, NotFound
from api.routes.reads import require_reader
from api.services import Services
from events import checkpoint_log, tree
from events.chain import format_time
from events.checkpoint_log import SignedCheckpoint
from events.checkpoint_note import fingerprint, parse_verifier_key
from events.errors import TreeBehind
from events.evidence import build_evidence
from events.model import ORDER_STREAM_PREFIX

AnyRequest = Request[Any, Any, Any]
_B64 = base64.b64encode
BIGINT = 2**63  # positions and sizes are Postgres bigints: larger ones name nothing


def _view(signed: SignedCheckpoint) -> dict[str, Any]:
    return {
        "origin": signed.origin,
        "size": signed.size,
        "root": _B64(signed.root).decode(),
        "key_fingerprint": signed.key_fingerprint,
        "signed_at": format_time(signed.signed_at),
        "note": signed.note,
    }


async def _latest(services: Services) -> SignedCheckpoint:
    """The newest checkpoint; one is signed now if none is recorded yet."""
    latest = await checkpoint_log.latest_checkpoint(services.db)
    if latest is None and services.sign_checkpoint is not None:
        latest = await services.sign_checkpoint()
    if latest is None:
        raise NotFound("no checkpoint is signed: HOOKLEDGER_CHECKPOINT_KEY is not set")
    return latest


@get("/api/v1/checkpoints/latest", summary="The newest signed checkpoint", tags=["proofs"],
     responses=errors(401, 404, 500, 503))  # fmt: skip
async def latest_checkpoint(request: AnyRequest) -> dict[str, Any]:
    services: Services = request.app.state.services
    require_reader(request, services)
    return _view(await _latest(services))


@get("/api/v1/checkpoints/key", summary="The key that signs checkpoints", tags=["proofs"],
     responses=errors(401, 404, 500, 503))  # fmt: skip
async def checkpoint_key(request: AnyRequest) -> dict[str, Any]:
    services: Services = request.app.state.services
    require_reader(request, services)
    text = await services.verifier_key() if services.verifier_key is not None else None
    if text is None:
        raise NotFound("no checkpoint key: HOOKLEDGER_CHECKPOINT_KEY is not set")
    name, public_key = parse_verifier_key(text)
    pem = public_key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    return {
        "name": name,
        "verifier_key": text,
        "fingerprint": fingerprint(public_key),
        "public_key_pem": pem.decode(),
    }


@get("/api/v1/checkpoints/{size:int}", summary="The checkpoint of one tree size", tags=["proofs"],
     responses=errors(400, 401, 404, 500, 503))  # fmt: skip
async def checkpoint_of_size(size: FromPath[int], request: AnyRequest) -> dict[str, Any]:
    services: Services = request.app.state.services
    require_reader(request, services)
    signed = await checkpoint_log.checkpoint_at(services.db, size) if 0 <= size < BIGINT else None
    if signed is None:
        raise NotFound(f"no checkpoint of size {size} was signed")
    return _view(signed)


async def _size_or_latest(services: Services, size: int | None) -> int:
    if size is None:
        return (await _latest(services)).size
    if size < 1:
        raise BadQuery("size must be at least 1")
    have = await tree.tree_size(services.db)
    if size > have:
        raise NotFound(f"the tree has {have} leaves, not {size}")
    return size


@get("/api/v1/proofs/consistency", summary="A consistency proof between two tree sizes",
     tags=["proofs"], responses=errors(400, 401, 404, 500, 503))  # fmt: skip
async def consistency(
    request: AnyRequest,
    from_size: Annotated[int, QueryParameter(name="from")],
    to_size: Annotated[int | None, QueryParameter(name="to")] = None,
) -> dict[str, Any]:
    services: Services = request.app.state.services
    require_reader(request, services)
    if from_size < 1:
        raise BadQuery("from must be at least 1")
    new = await _size_or_latest(services, to_size)
    if not 1 <= from_size <= new:
        raise BadQuery(f"from must be between 1 and to ({new})")
    proof = await tree.consistency_proof(services.db, from_size, new)
    return {
        "from": from_size,
        "to": new,
        "from_root": _B64(await tree.tree_head(services.db, from_size)).decode(),
        "to_root": _B64(await tree.tree_head(services.db, new)).decode(),
        "proof": [_B64(p).decode() for p in proof],
    }


@get("/api/v1/events/{position:int}/proof", summary="An event's inclusion proof",
     tags=["proofs"], responses=errors(400, 401, 404, 500, 503))  # fmt: skip
async def inclusion(
    position: FromPath[int],
    request: AnyRequest,
    size: Annotated[int | None, QueryParameter(name="size")] = None,
) -> dict[str, Any]:
    services: Services = request.app.state.services
    require_reader(request, services)
    if size is not None and size < 1:
        raise BadQuery("size must be at least 1")  # whatever the tree holds yet
    found = await tree.leaf_of(services.db, position) if 0 < position < BIGINT else None
    if found is None:
        raise NotFound(f"no event at position {position} in the tree (yet)")
    index = found.index
    tree_size = await _size_or_latest(services, size)
    if index >= tree_size:
        raise BadQuery(f"the event is leaf {index}, outside the tree of {tree_size} leaves")
    path = await tree.inclusion_proof(services.db, index, tree_size)
    signed = await checkpoint_log.checkpoint_at(services.db, tree_size)
    return {
        "position": position,
        "leaf_index": index,
        "size": tree_size,
        "event_hash": found.event_hash,
        "proof": [_B64(p).decode() for p in path],
        "checkpoint": signed.note if signed is not None else None,
    }


@get("/api/v1/orders/{order_id:str}/evidence", summary="An order's offline evidence",
     tags=["proofs"], responses=errors(400, 401, 404, 500, 503))  # fmt: skip
async def order_evidence(order_id: FromPath[str], request: AnyRequest) -> dict[str, Any]:
    services: Services = request.app.state.services
    require_reader(request, services)
    if "\x00" in order_id:
        raise NotFound(f"no events for order {order_id!r}")
    document = await evidence_of(services, ORDER_STREAM_PREFIX + order_id)
    if document is None:
        raise NotFound(f"no events for order {order_id!r}")
    return document


async def evidence_of(services: Services, stream: str) -> dict[str, Any] | None:
    """A stream's evidence against the newest checkpoint, one signed now when the
    newest does not cover the stream yet."""
    key = await services.verifier_key() if services.verifier_key is not None else None
    if key is None:
        raise NotFound("no checkpoint key: HOOKLEDGER_CHECKPOINT_KEY is not set")
    signed = await _latest(services)
    try:
        return await build_evidence(services.db, stream, signed, key)
    except TreeBehind:
        if services.sign_checkpoint is None or (fresh := await services.sign_checkpoint()) is None:
            raise
        return await build_evidence(services.db, stream, fresh, key)
