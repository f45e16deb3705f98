"""Webhook delivery: fan out new feed actions to subscriptions, then POST due deliveries (signed, in
parallel across tickets, one at a time per ticket) and record each outcome.

Each subscription is a *lane* of its own: its deliveries are claimed and sent by its own threads, so a slow
or failing receiver delays only itself. A round starts a lane for every active subscription whose previous
lane has finished; a lane claims a few deliveries at a time (as many as it sends at once) and renews each
claim's lease when its attempt starts (`WebhookService.begin_attempt`): a delivery is never sent by two
replicas, even when a receiver takes longer than the lease to answer a whole batch."""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

import httpx
from sqlalchemy.exc import DBAPIError

from rulesvc.audit.evidence import EvidenceError
from rulesvc.delivery.channels import channel_of
from rulesvc.delivery.ports import ClaimedDelivery
from rulesvc.delivery.service import SendResult, WebhookService
from rulesvc.tracing import DELIVERY, NO_TRACING, Span, Tracer, request_id_var, request_scope
from scheduler.metrics import WorkerMetrics

log = logging.getLogger("rulesvc.scheduler.webhooks")

REQUEST_ID_HEADER = "X-Request-ID"
"""Sent with every attempt: the id the attempt's log lines and span carry (a fresh one per attempt)."""


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
        max_lanes: int = 32,
        metrics: WorkerMetrics | None = None,
        tracer: Tracer = NO_TRACING,
    ) -> None:
        self.service = service
        self.tracer = tracer
        self.sender = sender or HttpSender(service.policy.timeout_seconds)
        self.batch = batch
        self.fanout_batch = fanout_batch
        self.concurrency = concurrency
        self.stats = DeliveryStats()
        self.metrics = metrics or WorkerMetrics()
        self._lanes = ThreadPoolExecutor(max_workers=max_lanes, thread_name_prefix="rulesvc-webhook-lane")
        self._senders: dict[str, ThreadPoolExecutor] = {}
        self._busy: dict[str, Future[int]] = {}
        self._lock = threading.Lock()
        self._stats_lock = threading.Lock()
        self._stop = threading.Event()

    def run_once(self, wait: bool = True) -> int:
        """Fan out, then start a lane for every active subscription not already being served. With `wait`,
        wait for the lanes and return the number of attempts they made; without (the worker's rounds), return
        at once: a lane still busy with a slow receiver keeps going while the next rounds serve the others."""
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
                started = []
                for subscription_id in self.service.active_subscription_ids():
                    if self._stop.is_set():
                        break
                    running = self._busy.get(subscription_id)
                    if running is not None and not running.done():
                        continue
                    lane = self._lanes.submit(self._lane, subscription_id)
                    self._busy[subscription_id] = lane
                    started.append(lane)
            except DBAPIError as exc:
                log.warning("webhook round failed, retrying at the next round: %s", exc.orig or exc)
                return 0
        return sum(lane.result() for lane in started) if wait else 0

    def _lane(self, subscription_id: str) -> int:
        """Claim and send this subscription's due deliveries until none is left; the number of attempts."""
        attempts = 0
        with self._lock:
            senders = self._senders.get(subscription_id)
            if senders is None:
                senders = ThreadPoolExecutor(self.concurrency, thread_name_prefix="rulesvc-webhook")
                self._senders[subscription_id] = senders
        try:
            while not self._stop.is_set():
                claimed = self.service.claim(min(self.batch, self.concurrency), subscription_id)
                if not claimed:
                    break
                attempts += sum(senders.map(self._attempt, claimed))
        except DBAPIError as exc:
            log.warning(
                "webhook lane %s failed, retrying at the next round: %s", subscription_id, exc.orig or exc
            )
        except RuntimeError:  # stopping: the senders were shut down
            pass
        return attempts

    def _attempt(self, claimed: ClaimedDelivery) -> int:
        """One attempt, in a `rulesvc.delivery` span under a request id of its own (sent as X-Request-ID)."""
        with request_scope(), self.tracer.span(DELIVERY) as span:
            if self.tracer.enabled:
                span.set("rulesvc.delivery_id", claimed.delivery_id)
                span.set("rulesvc.subscription_id", claimed.subscription_id)
                span.set("rulesvc.channel", channel_of(claimed.url))
                span.set("rulesvc.attempt", claimed.attempts)
            outcome = self._attempt_once(claimed, span)
            span.set("rulesvc.outcome", outcome)
            return 0 if outcome == "lost" else 1

    def _attempt_once(self, claimed: ClaimedDelivery, span: Span) -> str:
        """The outcome: delivered, failed, dead, rejected, lost (another worker holds it), unrecorded."""
        if not self.service.begin_attempt(claimed):  # the claim was lost to another worker: do not send
            log.info("delivery %s is attempted by another worker", claimed.delivery_id)
            return "lost"
        try:
            headers, body = self.service.request_for(claimed)
        except EvidenceError as exc:  # logged as an integrity alert by the check; never sent
            try:
                self.service.reject(claimed, exc)
            except DBAPIError as db_exc:
                log.warning("recording delivery %s failed: %s", claimed.delivery_id, db_exc.orig or db_exc)
            with self._stats_lock:
                self.stats.dead += 1
            self.metrics.attempt("rejected", channel=channel_of(claimed.url))
            return "rejected"
        headers[REQUEST_ID_HEADER] = request_id_var.get()
        self.tracer.propagate(headers)  # `traceparent` of this attempt's span, when tracing is on
        started = time.perf_counter()
        result = self.sender.send(claimed.url, headers, body)
        took = time.perf_counter() - started
        if result.status is not None:
            span.set("http.response.status_code", result.status)
        if result.error is not None:
            span.set("rulesvc.error", result.error)
        try:
            dead = self.service.complete(claimed, result)
        except DBAPIError as exc:  # the lease expires and the delivery is retried (same delivery_id)
            log.warning("recording delivery %s failed: %s", claimed.delivery_id, exc.orig or exc)
            return "unrecorded"
        with self._stats_lock:
            self.stats.attempts += 1
            self.stats.delivered += int(result.ok)
            self.stats.failed += int(not result.ok)
            self.stats.dead += int(dead)
        outcome = "delivered" if result.ok else "dead" if dead else "failed"
        self.metrics.attempt(outcome, took, channel_of(claimed.url))
        if not result.ok:
            log.info(
                "delivery %s attempt %d failed: %s%s",
                claimed.delivery_id,
                claimed.attempts,
                result.error or f"HTTP {result.status}",
                " (dead letter)" if dead else "",
            )
        return outcome

    def stop(self) -> None:
        self._stop.set()
        self._lanes.shutdown(wait=True, cancel_futures=True)
        with self._lock:
            for senders in self._senders.values():
                senders.shutdown(wait=True, cancel_futures=True)
        self.sender.close()
