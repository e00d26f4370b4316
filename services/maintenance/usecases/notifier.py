"""The notification sender: delivers queued rows over HTTP with retries and backoff.

Rows are claimed with a lease in one transaction and marked in another after the request,
so a restart loses nothing (a leased row becomes due again when its lease ends) and only a
crash between sending and marking can repeat a message. Failures stay visible through
`GET /api/notifications/deliveries/` (attempts, last error, status `failed` at the end).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import httpx

from services.maintenance import repository
from shared.db import utcnow

if TYPE_CHECKING:
    from shared.runtime import ServiceRuntime

log = logging.getLogger("taktline.maintenance.notifier")
MAX_ATTEMPTS = 8
LEASE = timedelta(minutes=2)
BATCH = 50


def backoff(attempts: int) -> timedelta:
    """10 s, 20 s, 40 s … capped at one hour."""
    return timedelta(seconds=min(10 * 2 ** (attempts - 1), 3600))


def body_for(kind: str, payload: dict[str, Any]) -> dict[str, Any]:
    """What each kind of channel expects: Slack-style `text`, a Teams workflow Adaptive Card,
    or the payload itself for a generic JSON webhook."""
    text = str(payload.get("message", ""))
    if kind == "slack":
        return {"text": text}
    if kind == "teams":
        card = {"type": "AdaptiveCard", "version": "1.4",
                "body": [{"type": "TextBlock", "text": text, "wrap": True}]}
        return {"type": "message",
                "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive", "content": card}]}
    return payload


async def _post(client: httpx.AsyncClient, kind: str, url: str, payload: dict[str, Any]) -> str | None:
    """None on success, else the error to keep."""
    try:
        response = await client.post(url, json=body_for(kind, payload))
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__}: {exc}"[:1000]
    if response.is_success:
        return None
    return f"HTTP {response.status_code}: {response.text[:500]}"


async def send_pending(runtime: ServiceRuntime, client: httpx.AsyncClient, now: datetime | None = None) -> int:
    """One round: claim what is due, send it, record each outcome. Returns how many were sent."""
    now = now or utcnow()
    async with runtime.uow() as uow:
        claimed = await repository.claim_deliveries(uow.session, now, now + LEASE, BATCH)
        await uow.commit()
    sent = 0
    for delivery_id, (kind, url, payload) in claimed:
        error = await _post(client, kind, url, payload)
        async with runtime.uow() as uow:
            row = await repository.get_delivery(uow.session, delivery_id)
            if row is not None:
                row.attempts += 1
                if error is None:
                    row.status, row.sent_at, row.last_error = "sent", utcnow(), None
                    sent += 1
                else:
                    row.last_error = error
                    row.status = "failed" if row.attempts >= MAX_ATTEMPTS else "pending"
                    row.next_attempt_at = now + backoff(row.attempts)
            await uow.commit()
    return sent


async def run(runtime: ServiceRuntime) -> None:
    """The background job: a round every `maintenance_notifier_interval` seconds."""
    async with httpx.AsyncClient(timeout=10.0) as client:
        while True:
            await asyncio.sleep(runtime.settings.maintenance_notifier_interval)
            try:
                await send_pending(runtime, client)
            except asyncio.CancelledError:
                raise
            except Exception:  # the loop must outlive one bad round
                log.exception("notification round failed")
