"""The console's pages. Every answer carries a strict Content-Security-Policy
(no script at all, styles only from hookledger itself); every form is posted
from the console itself and carries its session's CSRF token; everything a
provider sent is escaped by the templates (Jinja's autoescape)."""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

from litestar import Request, Response, get, post
from litestar.datastructures import Cookie
from litestar.params import FromPath
from litestar.response import Redirect, Template
from litestar.router import Router
from litestar.static_files import create_static_files_router

from api.console.iap import HEADER
from api.console.session import (
    COOKIE,
    LIFETIME_SECONDS,
    Session,
    check_csrf,
    new_session,
    role_of,
    same_origin,
    seal,
    secure_cookie,
    still_granted,
    unseal,
)
from api.rate_limit import source_address
from api.rejections import Forbidden, NotFound
from api.routes.proofs import evidence_of
from api.services import Services
from events.json_paths import replace_at
from events.model import ORDER_STREAM_PREFIX

TEMPLATES = Path(__file__).with_name("templates")
STATIC = Path(__file__).with_name("static")
CSP = ("default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
       "frame-ancestors 'none'; base-uri 'none'")  # fmt: skip
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
STATUSES = ("created", "paid", "cancelled", "refunded")
COUNTDOWNS = ("running", "satisfied", "expired", "cancelled")
AnyRequest = Request[Any, Any, Any]


def console_router() -> Router:
    """The console's routes and its stylesheet (none of them in the API's schema)."""
    static = create_static_files_router(path="/console/static", directories=[STATIC],
                                        include_in_schema=False)  # fmt: skip
    return Router(path="/", route_handlers=[sign_in_page, sign_in, sign_out, overview, orders,
                                            order, evidence, erase, dead_letters, retry, retry_all,
                                            job, trouble, replays, start_replay, operators,
                                            static],
                  include_in_schema=False)  # fmt: skip


def _services(request: AnyRequest) -> Services:
    services: Services = request.app.state.services
    return services


async def _viewer(request: AnyRequest) -> Session | None:
    services = _services(request)
    assertion = request.headers.get(HEADER)
    if services.iap is not None and assertion is not None and services.console_key is not None:
        role, email, expires = await services.iap.identify(assertion)
        # The same CSRF token for every request of this user: IAP sends no cookie.
        csrf = hmac.new(await services.console_key(), f"iap:{email}".encode(),
                        hashlib.sha256).hexdigest()[:32]  # fmt: skip
        return Session(role=role, expires=expires, csrf=csrf, who=f"{email} (IAP)")
    value = request.cookies.get(COOKIE)
    if not value or services.console_key is None:
        return None
    session = unseal(value, await services.console_key())
    if session is None or not still_granted(session, services.operator_tokens,
                                            services.auditor_tokens):  # fmt: skip
        return None
    return session


async def _operator_form(request: AnyRequest, doing: str) -> tuple[Session, Any] | None:
    """The viewer and form of an operator's action, posted from the console
    with its session's CSRF token; None when nobody is signed in (Forbidden for
    an auditor, Unauthorized for a form from elsewhere)."""
    same_origin(request)
    viewer = await _viewer(request)
    if viewer is None:
        return None
    form = await request.form()
    check_csrf(viewer, str(form.get("csrf") or ""))
    if not viewer.may_act:
        raise Forbidden(f"an auditor reads; only an operator may {doing}")
    return viewer, form


def _address(request: AnyRequest) -> str:
    """Where an operator's action came from, as the ledger records it: behind
    HOOKLEDGER_TRUSTED_PROXIES proxies (Cloud Run: 1), the address the outermost
    trusted one forwarded, not the proxy's own."""
    client = request.client.host if request.client else None
    return source_address(client, request.headers, _services(request).trusted_proxies)


def _page(name: str, context: dict[str, Any], status: int = 200) -> Template:
    return Template(template_name=name, context=context, headers=HEADERS, status_code=status)


def _to_sign_in() -> Redirect:
    return Redirect("/console/sign-in", status_code=303, headers=HEADERS)


@get("/console/sign-in")
async def sign_in_page(request: AnyRequest) -> Template | Redirect:
    services = _services(request)
    once = request.query_params.get("once", "")[:100]
    if once and services.redeem_link is not None and services.console_key is not None:
        if await services.redeem_link(once):
            session = new_session("operator", once, who="local operator (one-time link)")
            return _signed_in(request, session, await services.console_key())
        problem = "That sign-in link was used already or has expired."
        return _page("sign_in.html", {"viewer": None, "problem": problem}, status=401)
    return _page("sign_in.html", {"viewer": None, "problem": None})


def _signed_in(request: AnyRequest, session: Session, key: bytes) -> Redirect:
    cookie = Cookie(key=COOKIE, value=seal(session, key), httponly=True, samesite="strict",
                    secure=secure_cookie(request), max_age=LIFETIME_SECONDS,
                    path="/console")  # fmt: skip
    return Redirect("/console", status_code=303, cookies=[cookie], headers=HEADERS)


@post("/console/sign-in", status_code=303)
async def sign_in(request: AnyRequest) -> Redirect | Template:
    same_origin(request)
    services = _services(request)
    form = await request.form()
    token = str(form.get("token") or "")
    role = role_of(token, services.operator_tokens, services.auditor_tokens)
    if role is None or services.console_key is None:
        problem = "That token opens nothing here." if token else "Enter a token."
        return _page("sign_in.html", {"viewer": None, "problem": problem}, status=401)
    return _signed_in(request, new_session(role, token), await services.console_key())


@post("/console/sign-out", status_code=303)
async def sign_out(request: AnyRequest) -> Redirect:
    same_origin(request)
    viewer = await _viewer(request)
    if viewer is not None:
        check_csrf(viewer, str((await request.form()).get("csrf") or ""))
    gone = Cookie(key=COOKIE, value="", max_age=0, httponly=True, samesite="strict",
                  secure=secure_cookie(request), path="/console")  # fmt: skip
    return Redirect("/console/sign-in", status_code=303, cookies=[gone], headers=HEADERS)


@get("/console")
async def overview(request: AnyRequest) -> Template | Redirect:
    viewer = await _viewer(request)
    if viewer is None:
        return _to_sign_in()
    services = _services(request)
    # The report the process keeps fresh in the background; run now only
    # before its first refresh.
    selftest = services.metrics.selftest_report
    if selftest is None:
        selftest = await services.selftest() if services.selftest else {"status": "?", "checks": {}}
    counts = await services.console_overview() if services.console_overview else {}
    return _page("overview.html", {"viewer": viewer, "selftest": selftest, "counts": counts})


@get("/console/orders")
async def orders(request: AnyRequest) -> Template | Redirect:
    viewer = await _viewer(request)
    if viewer is None:
        return _to_sign_in()
    services = _services(request)
    query = request.query_params.get("q", "").strip()[:500]
    status = request.query_params.get("status", "")
    status = status if status in STATUSES else ""
    countdown = request.query_params.get("countdown", "")
    countdown = countdown if countdown in COUNTDOWNS else ""
    after = request.query_params.get("after", "")[:500]
    found: list[dict[str, Any]] = []
    by_email = False
    if services.console_orders is not None and "\x00" not in query + after:
        found, by_email = await services.console_orders(query, status, countdown, after)
    next_after = found[-1]["order_id"] if len(found) == PAGE else None
    return _page("orders.html", {
        "viewer": viewer, "query": query, "status": status, "statuses": STATUSES,
        "countdown": countdown, "countdowns": COUNTDOWNS,
        "orders": found, "by_email": by_email, "after": after, "next_after": next_after,
    })  # fmt: skip


PAGE = 50
LISTED = 200  # dead letters listed on their page
MASK = "[personal value: shown to operators]"


def _masked(payload: Any, entries: list[dict[str, Any]]) -> Any:
    """The payload with each held personal value replaced by a mask."""
    shown = copy.deepcopy(payload)
    for entry in entries:
        if entry.get("state") != "held":
            continue
        # Not where the entry says: nothing of it is shown either way.
        replace_at(shown, entry["path"], MASK)
    return shown


@get("/console/orders/{order_id:str}")
async def order(request: AnyRequest, order_id: FromPath[str]) -> Template | Redirect:
    viewer = await _viewer(request)
    if viewer is None:
        return _to_sign_in()
    services = _services(request)
    if "\x00" in order_id or services.order_status is None or services.order_history is None:
        raise NotFound(f"no order {order_id!r}")
    status = await services.order_status(order_id)
    events, chain = await services.order_history(order_id)
    if status is None and not events:
        raise NotFound(f"no order {order_id!r}")
    for event in events:
        payload = event["payload"]
        if not viewer.may_act:  # an auditor sees that a value is held, not the value
            payload = _masked(payload, event.get("personal") or [])
        event["shown"] = json.dumps(payload, indent=2, ensure_ascii=False)
    done = request.query_params.get("done", "")[:300]
    return _page("order.html", {"viewer": viewer, "order_id": order_id, "status": status or {},
                                "events": events, "chain": chain, "held": _held(events),
                                "done": done})  # fmt: skip


def _held(events: list[dict[str, Any]]) -> int:
    """How many personal values of these events are still held."""
    return sum(1 for e in events for entry in e.get("personal") or [] if entry["state"] == "held")


@post("/console/orders/{order_id:str}/erase", status_code=200)
async def erase(request: AnyRequest, order_id: FromPath[str]) -> Template | Redirect:
    """Erase the personal values of an order's customer: first what it would
    take (a confirmation page), then, confirmed, the erasure itself, recorded
    in the ledger as a ``subject.erased`` event naming the operator."""
    acting = await _operator_form(request, "erase personal data")
    if acting is None:
        return _to_sign_in()
    viewer, form = acting
    services = _services(request)
    if ("\x00" in order_id or services.erase is None or services.order_history is None
            or services.erasure_preview is None):  # fmt: skip
        raise NotFound(f"no order {order_id!r}")
    reason = str(form.get("reason") or "").strip()[:500]
    events, _ = await services.order_history(order_id)
    if not events:
        raise NotFound(f"no order {order_id!r}")
    if not reason or form.get("confirm") != "yes":  # first, what it would take
        preview = await services.erasure_preview(order_id)
        return _page("erase.html", {"viewer": viewer, "order_id": order_id, "reason": reason,
                                    "held": _held(events), "preview": preview},
                     status=200 if reason else 400)  # fmt: skip
    address = _address(request)
    answer = await services.erase(order_id, None, reason, viewer.who, f"console from {address}")
    erased = sum(item["values"] for item in answer["subjects"] if item["event_id"])
    said = "nothing was left to erase"
    if answer["erased"]:
        said = (f"{erased} personal value{'s' if erased != 1 else ''} erased; recorded in the "
                f"ledger as erased by {viewer.who}")  # fmt: skip
    return Redirect(f"/console/orders/{quote(order_id, safe='')}?done={quote(said)}",
                    status_code=303, headers=HEADERS)  # fmt: skip


@get("/console/dead-letters")
async def dead_letters(request: AnyRequest) -> Template | Redirect:
    viewer = await _viewer(request)
    if viewer is None:
        return _to_sign_in()
    services = _services(request)
    letters = await services.dead_letters() if services.dead_letters else []
    kinds = sorted({letter["kind"] for letter in letters})
    kind = request.query_params.get("kind", "")
    matching = [letter for letter in letters if not kind or letter["kind"] == kind]
    retriable = len(_retriable(matching, kind))
    done = request.query_params.get("done", "")[:300]
    # After a long outage there may be thousands: the oldest are listed, and
    # "retry all" still takes every one that matches.
    return _page("dead_letters.html", {"viewer": viewer, "letters": matching[:LISTED],
                                       "matching": len(matching), "kinds": kinds, "kind": kind,
                                       "done": done, "retriable": retriable})  # fmt: skip


def _retriable(letters: list[dict[str, Any]], kind: str) -> list[str]:
    """The keys of the dead letters of ``kind`` (or of any) an operator can retry."""
    return [d["key"] for d in letters if d["retriable"] and (not kind or d["kind"] == kind)]


@post("/console/dead-letters/retry", status_code=303)
async def retry(request: AnyRequest) -> Redirect:
    acting = await _operator_form(request, "retry")
    if acting is None:
        return _to_sign_in()
    viewer, form = acting
    services = _services(request)
    key = str(form.get("key") or "")[:500]
    if services.retry_dead_letter is None or "\x00" in key:
        raise NotFound(f"no dead letter {key!r}")
    address = _address(request)
    if not await services.retry_dead_letter(key, viewer.who, address):
        raise NotFound(f"no dead letter {key!r} (retried already, or never dead)")
    done = quote(f"{key} queued again; recorded in the ledger as retried by {viewer.who}")
    return Redirect(f"/console/dead-letters?done={done}", status_code=303, headers=HEADERS)


@get("/console/orders/{order_id:str}/evidence")
async def evidence(request: AnyRequest, order_id: FromPath[str]) -> Response[bytes] | Redirect:
    viewer = await _viewer(request)
    if viewer is None:
        return _to_sign_in()
    if "\x00" in order_id:
        raise NotFound(f"no events for order {order_id!r}")
    document = await evidence_of(_services(request), ORDER_STREAM_PREFIX + order_id)
    if document is None:
        raise NotFound(f"no events for order {order_id!r}")
    name = quote(f"evidence-{order_id}.json")
    attachment = {**HEADERS, "Content-Disposition": f"attachment; filename*=UTF-8''{name}"}
    return Response(json.dumps(document, indent=2).encode(), media_type="application/json",
                    headers=attachment)  # fmt: skip


@get("/console/trouble")
async def trouble(request: AnyRequest) -> Template | Redirect:
    viewer = await _viewer(request)
    if viewer is None:
        return _to_sign_in()
    services = _services(request)
    found = await services.trouble() if services.trouble else {"rejections": [], "blocked": []}
    return _page("trouble.html", {"viewer": viewer, "trouble": found})


@post("/console/dead-letters/retry-all", status_code=200)
async def retry_all(request: AnyRequest) -> Template | Redirect:
    acting = await _operator_form(request, "retry")
    if acting is None:
        return _to_sign_in()
    viewer, form = acting
    services = _services(request)
    if services.dead_letters is None or services.retry_all is None:
        raise NotFound("no dead letters here")
    kind = str(form.get("kind") or "")[:200]
    keys = _retriable(await services.dead_letters(), kind)
    if form.get("confirm") != "yes":  # first, how many it would touch
        return _page("confirm.html", {"viewer": viewer, "count": len(keys), "kind": kind})
    address = _address(request)
    job_id = await services.retry_all(keys, kind, viewer.who, address)
    return Redirect(f"/console/jobs/{job_id}", status_code=303, headers=HEADERS)


@get("/console/jobs/{job_id:int}")
async def job(request: AnyRequest, job_id: FromPath[int]) -> Template | Redirect:
    viewer = await _viewer(request)
    if viewer is None:
        return _to_sign_in()
    services = _services(request)
    found = await services.console_job(job_id) if services.console_job else None
    if found is None:
        raise NotFound(f"no job {job_id}")
    return _page("job.html", {"viewer": viewer, "job": found})


@get("/console/replays")
async def replays(request: AnyRequest) -> Template | Redirect:
    viewer = await _viewer(request)
    if viewer is None:
        return _to_sign_in()
    services = _services(request)
    state = await services.replays() if services.replays else {"consumers": [], "jobs": []}
    running = any(not job["finished_at"] for job in state["jobs"])
    return _page("replays.html", {"viewer": viewer, "state": state, "running": running})


@post("/console/replays", status_code=303)
async def start_replay(request: AnyRequest) -> Redirect:
    acting = await _operator_form(request, "start a replay")
    if acting is None:
        return _to_sign_in()
    viewer, _ = acting
    services = _services(request)
    if services.start_replay is None:
        raise NotFound("no replay here")
    address = _address(request)
    job_id = await services.start_replay(viewer.who, address)
    return Redirect(f"/console/jobs/{job_id}", status_code=303, headers=HEADERS)


@get("/console/operators")
async def operators(request: AnyRequest) -> Template | Redirect:
    """What operators did (retries, replays, erasures), newest first: the
    auditor's view of the operators, read from the ledger."""
    viewer = await _viewer(request)
    if viewer is None:
        return _to_sign_in()
    services = _services(request)
    before = request.query_params.get("before", "")
    start = int(before) if before.isdigit() and len(before) < 19 else None
    actions = await services.operator_actions(start) if services.operator_actions else []
    older = actions[-1]["position"] if len(actions) == PAGE else None
    return _page("operators.html", {"viewer": viewer, "actions": actions, "older": older,
                                    "paged": start is not None})  # fmt: skip
