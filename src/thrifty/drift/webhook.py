"""Drift alerts POSTed to a webhook, off the request path: ``send`` only puts the payload on
a bounded queue (dropping it, with a log line, when the queue is full); one background task
posts them in order with a timeout and one retry. A slow or dead webhook never slows a
request. Header values and the URL (either may hold a secret) are never logged."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from typing import Any

import aiohttp
import orjson

log = logging.getLogger("thrifty.drift")
_RETRY_AFTER_S = 1.0


class WebhookSender:
    def __init__(self, url: str, headers: Mapping[str, str], *, timeout_s: float = 5.0,
                 queue_size: int = 100) -> None:
        self.url = url
        self._headers = {"content-type": "application/json", **headers}
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._queue: asyncio.Queue[bytes] | None = None
        self._size = queue_size
        self._task: asyncio.Task[None] | None = None
        self.sent = 0
        self.dropped = 0
        self.failed = 0

    def send(self, payload: Mapping[str, Any]) -> bool:
        """Queue ``payload``; False when it was dropped (queue full, or no event loop)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.dropped += 1
            log.warning("drift webhook: no event loop; alert not sent")
            return False
        if self._queue is None:
            self._queue = asyncio.Queue(self._size)
        if self._task is None or self._task.done():
            self._task = loop.create_task(self._run(self._queue))
        try:
            self._queue.put_nowait(orjson.dumps(payload))
        except asyncio.QueueFull:
            self.dropped += 1
            log.warning("drift webhook: %d alerts waiting; this one is dropped", self._size)
            return False
        return True

    async def _run(self, queue: asyncio.Queue[bytes]) -> None:
        async with aiohttp.ClientSession(timeout=self._timeout) as session:
            while True:
                body = await queue.get()
                try:
                    await self._post(session, body)
                except Exception:  # a bug here must not stop later alerts
                    self.failed += 1
                    log.exception("drift webhook: unexpected error")
                finally:
                    queue.task_done()

    async def _post(self, session: aiohttp.ClientSession, body: bytes) -> None:
        for attempt in (1, 2):
            try:
                async with session.post(self.url, data=body, headers=self._headers) as resp:
                    if resp.status < 400:
                        self.sent += 1
                        return
                    why = f"HTTP {resp.status}"
                    if resp.status < 500 and resp.status != 429:
                        break  # the webhook refuses it: retrying will not help
            except (aiohttp.ClientError, TimeoutError) as exc:
                why = type(exc).__name__
            if attempt == 1:
                await asyncio.sleep(_RETRY_AFTER_S)
        self.failed += 1
        # not the URL: chat webhooks (Slack, Teams) carry their secret in it
        log.warning("drift webhook failed (%s); alert not delivered", why)

    async def close(self, wait_s: float = 2.0) -> None:
        """Deliver what is queued (for at most ``wait_s``), then stop."""
        if self._task is None:
            return
        if self._queue is not None and not self._task.done():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._queue.join(), wait_s)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
