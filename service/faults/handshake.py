"""The faults of the handshake itself, and where a connection's effective faults are decided.

`fault_middleware` runs last before the upgrade, after auth, origin and capacity: a client
that would be refused for a real reason still is, and a handshake waiting out
`handshake_delay` holds its place under the connection caps (so delays cannot pile up
beyond them). It reads the query (with `query_overrides`),
answers a bad value with 400 and one line, fills in a random seed when none was given, then
acts out `handshake_delay` and `reject`/`reject_rate`. A connection with any fault left for
its lifetime finds them on the request under FAULTS_KEY; one without takes the plain path.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import replace

from aiohttp import hdrs, web

from ..middlewares import Handler, Middleware, refuse
from . import FAULT_COUNTER, FAULTS_KEY, FaultCounter
from .params import MAX_SEED, FaultError, Faults, faults_from_query

#: Seconds a client is told to wait after an injected 429 or 503 (Retry-After).
RETRY_AFTER_SECONDS = "1"
#: The handshake refusal reasons (wsrelay_handshakes_rejected_total) that SPEC.md ties to a
#: status; an injected refusal with another status is counted as a fault only.
_REASONS = {400: "bad_request", 401: "auth", 403: "origin", 503: "capacity"}


def new_seed() -> int:
    """A seed for a connection that gave none; it is logged so the run can be replayed."""
    return random.SystemRandom().randint(0, MAX_SEED)


def rejects(faults: Faults, seed: int) -> bool:
    """Whether this handshake is refused: always with `reject` alone, else by `reject_rate`.

    The draw comes from the seed, so the same seed gives the same answer.
    """
    if faults.reject is None:
        return False
    if faults.reject_rate == 0 or faults.reject_rate >= 1:
        return True
    return random.Random(seed).random() < faults.reject_rate


class Refused(web.HTTPError):
    """The injected refusal: `status` with a one-line body, Retry-After on 429 and 503."""

    def __init__(self, status: int) -> None:
        self.status_code = status
        headers = {hdrs.RETRY_AFTER: RETRY_AFTER_SECONDS} if status in (429, 503) else None
        super().__init__(headers=headers, text=f"refused on purpose (reject={status})\n")


def fault_middleware(
    defaults: Faults, query_overrides: bool, counter: FaultCounter
) -> Middleware | None:
    """The handshake step of a route with faults; None (no step at all) for a route without."""
    if defaults.none and not query_overrides:
        return None

    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        faults = defaults
        if query_overrides:
            try:
                faults = faults_from_query(request.query, defaults)
            except FaultError as error:
                raise refuse(
                    request, "bad_request", web.HTTPBadRequest(text=f"{error}\n")
                ) from None
        if faults.none:
            return await handler(request)
        if faults.seed is None:
            faults = replace(faults, seed=new_seed())
        assert faults.seed is not None
        if faults.handshake_delay > 0:
            counter.fault_injected("handshake_delay")
            await asyncio.sleep(faults.handshake_delay)
        if faults.reject is not None and rejects(faults, faults.seed):
            counter.fault_injected("reject")
            refused = Refused(faults.reject)
            reason = _REASONS.get(faults.reject)
            if reason is None:  # answered, not raised: the route's refusal counter skips it
                return web.Response(
                    status=refused.status, text=refused.text, headers=refused.headers
                )
            raise refuse(request, reason, refused)
        request[FAULTS_KEY] = faults
        request[FAULT_COUNTER] = counter
        return await handler(request)

    return middleware
