"""The notification sender: formats per channel kind, retries with backoff, shows failures."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from services.maintenance.usecases import notifier
from tests.maintenance.conftest import MaintenanceHarness

NOW = datetime(2030, 1, 1, tzinfo=UTC)


class Receiver:
    """An httpx transport standing in for the webhook endpoints; answers with `statuses` in turn."""

    def __init__(self, *statuses: int) -> None:
        self.statuses = list(statuses)
        self.requests: list[tuple[str, Any]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append((str(request.url), json.loads(request.content)))
        return httpx.Response(self.statuses.pop(0) if self.statuses else 200)

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.MockTransport(self))


async def _threshold_alert(api: MaintenanceHarness, kind: str) -> None:
    channel = await api.ok("PUT", "/api/notifications/channels/", 201,
                           json={"name": kind, "kind": kind, "url": f"https://{kind}.example/hook"})
    item = await api.item(item_type="measurement", name="Runout", threshold_upper=1.0,
                          threshold_notify_id=channel["id"])
    await api.entry(item["id"], value=2.0)


async def _deliveries(api: MaintenanceHarness) -> list[dict[str, Any]]:
    return list((await api.ok("GET", "/api/notifications/deliveries/")).values())


class TestSend:
    async def test_sends_each_delivery_once_in_the_channels_format(self, api: MaintenanceHarness) -> None:
        for kind in ("slack", "teams", "webhook"):
            await _threshold_alert(api, kind)
        receiver = Receiver()
        async with receiver.client() as client:
            assert await notifier.send_pending(api.runtime, client, NOW) == 3
            assert await notifier.send_pending(api.runtime, client, NOW + timedelta(hours=1)) == 0
        bodies = dict(receiver.requests)
        assert "above" in bodies["https://slack.example/hook"]["text"]
        card = bodies["https://teams.example/hook"]["attachments"][0]
        assert card["contentType"] == "application/vnd.microsoft.card.adaptive"
        assert bodies["https://webhook.example/hook"]["kind"] == "threshold"
        assert {d["status"] for d in await _deliveries(api)} == {"sent"}

    async def test_retries_with_backoff_and_keeps_the_error_visible(self, api: MaintenanceHarness) -> None:
        await _threshold_alert(api, "webhook")
        receiver = Receiver(503, 500)
        async with receiver.client() as client:
            assert await notifier.send_pending(api.runtime, client, NOW) == 0
            [delivery] = await _deliveries(api)
            assert (delivery["status"], delivery["attempts"]) == ("pending", 1)
            assert delivery["last_error"].startswith("HTTP 503")
            assert delivery["next_attempt_at"] == (NOW + timedelta(seconds=10)).timestamp()
            assert await notifier.send_pending(api.runtime, client, NOW + timedelta(seconds=5)) == 0  # not yet
            assert await notifier.send_pending(api.runtime, client, NOW + timedelta(seconds=10)) == 0
            assert await notifier.send_pending(api.runtime, client, NOW + timedelta(seconds=40)) == 1
        [delivery] = await _deliveries(api)
        assert (delivery["status"], delivery["attempts"], delivery["last_error"]) == ("sent", 3, None)
        assert len(receiver.requests) == 3

    async def test_gives_up_after_the_last_attempt(self, api: MaintenanceHarness) -> None:
        await _threshold_alert(api, "slack")
        receiver = Receiver(*[500] * notifier.MAX_ATTEMPTS)
        async with receiver.client() as client:
            for day in range(notifier.MAX_ATTEMPTS + 2):
                await notifier.send_pending(api.runtime, client, NOW + timedelta(days=day))
        [delivery] = await _deliveries(api)
        assert (delivery["status"], delivery["attempts"]) == ("failed", notifier.MAX_ATTEMPTS)
        assert len(receiver.requests) == notifier.MAX_ATTEMPTS
        assert len(await api.ok("GET", "/api/notifications/deliveries/?status=failed")) == 1


    async def test_a_claim_lost_in_a_crash_is_sent_once_its_lease_ends(self, api: MaintenanceHarness) -> None:
        from services.maintenance import repository

        await _threshold_alert(api, "webhook")
        async with api.runtime.uow() as uow:  # claimed, then the sender died before sending
            assert len(await repository.claim_deliveries(uow.session, NOW, NOW + notifier.LEASE, 10)) == 1
            await uow.commit()
        receiver = Receiver()
        async with receiver.client() as client:
            assert await notifier.send_pending(api.runtime, client, NOW + timedelta(seconds=30)) == 0
            assert await notifier.send_pending(api.runtime, client, NOW + notifier.LEASE) == 1
        assert len(receiver.requests) == 1


def test_backoff_doubles_up_to_an_hour() -> None:
    assert [notifier.backoff(n).total_seconds() for n in (1, 2, 3, 12)] == [10, 20, 40, 3600]
