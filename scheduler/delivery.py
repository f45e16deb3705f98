"""Webhook delivery: fan out new feed actions to subscriptions, then POST due deliveries (signed, in
parallel across tickets, one at a time per ticket) and record each outcome."""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

import httpx
from sqlalchemy.exc import DBAPIError

from rulesvc.evidence import EvidenceError
from rulesvc.storage.webhook_records import ClaimedDelivery
from rulesvc.webhook_service import SendResult, WebhookService

log = logging.getLogger("rulesvc.scheduler.webhooks")


class Sender(Protocol):
    def send(self, url: str, headers: dict[str, str], body: bytes) -> SendResult: ...

    def close(self) -> None: ...


class HttpSender:
    """POSTs with httpx; any transport error (refused, timeout, reset) is a failed attempt, never raised."""

    def __init__(self, timeout: float) -> None:
        self._client = httpx.Client(timeout=timeout, follow_redirects=False)

    def send(self, url: str, headers: dict[str, str], body: bytes) -> SendResult:
        try:
            response = self._client.post(url, content=body, headers=headers)
        except httpx.TimeoutException as exc:
            return SendResult(None, f"timeout: {type(exc).__name__}")
        except httpx.HTTPError as exc:
            return SendResult(None, f"{type(exc).__name__}: {exc}")
        return SendResult(response.status_code)

    def close(self) -> None:
        self._client.close()


@dataclass
class DeliveryStats:
    rounds: int = 0
    fanned_out: int = 0
    attempts: int = 0
    delivered: int = 0
    failed: int = 0
    dead: int = 0


class WebhookDeliverer:
    def __init__(
        self,
        service: WebhookService,
        sender: Sender | None = None,
        batch: int = 50,
        concurrency: int = 8,
        fanout_batch: int = 1000,
    ) -> None:
        self.service = service
        self.sender = sender or HttpSender(service.policy.timeout_seconds)
        self.batch = batch
        self.fanout_batch = fanout_batch
        self.stats = DeliveryStats()
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="rulesvc-webhook")
        self._lock = threading.Lock()
        self._stats_lock = threading.Lock()
        self._stop = threading.Event()

    def run_once(self) -> int:
        """Fan out, then attempt every delivery due now; returns the number of attempts made."""
        attempts = 0
        with self._lock:
            self.stats.rounds += 1
            try:
                if not self.service.any_active():
                    return 0
                while not self._stop.is_set():
                    fanned = self.service.fan_out(self.fanout_batch)
                    self.stats.fanned_out += fanned
                    if fanned < self.fanout_batch:
                        break
                while not self._stop.is_set():
                    claimed = self.service.claim(self.batch)
                    if not claimed:
                        break
                    attempts += len(claimed)
                    list(self._pool.map(self._attempt, claimed))
            except DBAPIError as exc:
                log.warning("webhook round failed, retrying at the next round: %s", exc.orig or exc)
        return attempts

    def _attempt(self, claimed: ClaimedDelivery) -> None:
        try:
            headers, body = self.service.request_for(claimed)
        except EvidenceError as exc:  # logged as an integrity alert by the check; never sent
            try:
                self.service.reject(claimed, exc)
            except DBAPIError as db_exc:
                log.warning("recording delivery %s failed: %s", claimed.delivery_id, db_exc.orig or db_exc)
            with self._stats_lock:
                self.stats.dead += 1
            return
        result = self.sender.send(claimed.url, headers, body)
        try:
            dead = self.service.complete(claimed, result)
        except DBAPIError as exc:  # the lease expires and the delivery is retried (same delivery_id)
            log.warning("recording delivery %s failed: %s", claimed.delivery_id, exc.orig or exc)
            return
        with self._stats_lock:
            self.stats.attempts += 1
            self.stats.delivered += int(result.ok)
            self.stats.failed += int(not result.ok)
            self.stats.dead += int(dead)
        if not result.ok:
            log.info(
                "delivery %s attempt %d failed: %s%s",
                claimed.delivery_id,
                claimed.attempts,
                result.error or f"HTTP {result.status}",
                " (dead letter)" if dead else "",
            )

    def stop(self) -> None:
        self._stop.set()
        self._pool.shutdown(wait=True, cancel_futures=True)
        self.sender.close()
