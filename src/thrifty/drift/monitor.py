"""The drift monitor: a gateway observer that feeds every finished request's signals to
per-deployment detectors and opens an alert when one of them detects a change. O(1) per
request and no I/O on the request path: an alert is a log line, an entry in memory (read
by the admin API, the dashboard and the metrics) and a webhook payload handed to a
background sender. With ``demote`` on, the planner routes around a deployment with an
open alert until an operator clears it; clearing also restarts that signal's detector, so
the behaviour the operator accepted becomes the new baseline.

State is per process: with several workers each watches its own share of the traffic.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Mapping
from typing import TYPE_CHECKING

from thrifty.config.drift import DriftConfig, SignalName
from thrifty.core.clock import Clock
from thrifty.core.ids import new_request_id
from thrifty.drift.alerts import DriftAlert
from thrifty.drift.detectors import Detector, Shift, make_detector
from thrifty.drift.signals import SignalSpec, samples, signal_specs
from thrifty.drift.webhook import WebhookSender
from thrifty.errors import NotFound
from thrifty.providers.base import Target

if TYPE_CHECKING:
    from thrifty.engine.account import Outcome
    from thrifty.ledger.entry import LedgerEntry

log = logging.getLogger("thrifty.drift")


class _Tracker:
    """One deployment's detectors, and its open alert per signal (a signal with an open
    alert is not judged again until the alert is cleared)."""

    __slots__ = ("detectors", "open", "stamp", "tokens")

    def __init__(self, detectors: dict[SignalName, Detector], rate: float, now: float) -> None:
        self.detectors = detectors
        self.open: dict[SignalName, str] = {}
        self.tokens = rate  # a full bucket: a new deployment is judged from its first request
        self.stamp = now

    def admit(self, now: float, rate: float) -> bool:
        """Take a token from this deployment's bucket (``rate`` per second, one second's
        worth at most), or refuse when it is empty."""
        tokens = min(rate, self.tokens + (now - self.stamp) * rate)
        self.stamp = now
        if tokens < 1.0:
            self.tokens = tokens
            return False
        self.tokens = tokens - 1.0
        return True


class DriftMonitor:
    def __init__(self, cfg: DriftConfig, clock: Clock, *,
                 webhook: WebhookSender | None = None) -> None:
        self.cfg = cfg
        self.clock = clock
        self.webhook = webhook
        self._specs: dict[SignalName, SignalSpec] = {
            n: s for n, s in signal_specs(cfg).items() if s.enabled}
        self._trackers: dict[str, _Tracker] = {}
        self._open: dict[str, DriftAlert] = {}
        self._cleared: deque[DriftAlert] = deque(maxlen=cfg.keep_cleared)
        self._demoted: dict[str, str] = {}
        self._full_logged = False

    # -- the observer (request path) -------------------------------------------------------

    def request_done(self, outcome: Outcome, entry: LedgerEntry) -> None:
        judged = self._judged(outcome)
        if not judged:
            return
        for target, signal, value in samples(outcome, self._specs, judged):
            tracker = judged[target.key]
            if signal in tracker.open:
                continue
            detector = tracker.detectors.get(signal)
            if detector is None:  # the signal is disabled
                continue
            shift = detector.update(value)
            if shift is not None:
                self._raise(target, tracker, signal, shift)

    def _judged(self, outcome: Outcome) -> dict[str, _Tracker]:
        """The trackers of the deployments this request called whose sampling admits it:
        the answer's checks (a regex, a JSON parse) run only for those."""
        out: dict[str, _Tracker] = {}
        rate = self.cfg.max_samples_per_s
        now = self.clock.monotonic()
        for call in outcome.calls:
            key = call.target.key
            if key in out:
                continue
            tracker = self._trackers.get(key) or self._track(key)
            if tracker is not None and (rate is None or tracker.admit(now, rate)):
                out[key] = tracker
        return out

    def _track(self, key: str) -> _Tracker | None:
        if len(self._trackers) >= self.cfg.max_models:
            if not self._full_logged:
                self._full_logged = True
                log.warning("drift: %d deployments tracked (drift.max_models); %s and later "
                            "ones are not watched", len(self._trackers), key)
            return None
        tracker = _Tracker({n: make_detector(self.cfg.detector, s.params)
                            for n, s in self._specs.items()},
                           self.cfg.max_samples_per_s or 1.0, self.clock.monotonic())
        self._trackers[key] = tracker
        return tracker

    def _raise(self, target: Target, tracker: _Tracker, signal: SignalName,
               shift: Shift) -> None:
        spec = self._specs[signal]
        model = target.deployment or target.upstream_model
        alert = DriftAlert(
            id="drift-" + new_request_id().removeprefix("thr-"), provider=target.provider,
            model=model, signal=signal, direction=shift.direction,
            baseline=spec.to_natural(shift.baseline), current=spec.to_natural(shift.current),
            detected_at=self.clock.now(), demoted=self.cfg.demote, samples=shift.samples)
        tracker.open[signal] = alert.id
        self._open[alert.id] = alert
        if alert.demoted:
            self._demoted.setdefault(alert.key, alert.id)
        log.warning("drift alert %s: %s after %d samples%s", alert.id, alert.describe(),
                    shift.samples, "; demoted in routing until cleared" if alert.demoted
                    else "")
        if self.webhook is not None:
            self.webhook.send({"event": "drift.alert", "alert": alert.to_json()})

    # -- reading and clearing (admin API, dashboard, planner) ------------------------------

    @property
    def demoted(self) -> Mapping[str, str]:
        """Deployment key -> the open alert demoting it (empty unless ``demote`` is on)."""
        return self._demoted

    def alerts(self, include_cleared: bool = False) -> list[DriftAlert]:
        """Open alerts, newest first; with ``include_cleared``, the cleared ones kept too."""
        out = list(self._open.values())
        if include_cleared:
            out.extend(self._cleared)
        out.sort(key=lambda a: a.detected_at, reverse=True)
        return out

    def get(self, alert_id: str) -> DriftAlert:
        alert = self._open.get(alert_id) or next(
            (a for a in self._cleared if a.id == alert_id), None)
        if alert is None:
            raise NotFound(f"no drift alert {alert_id!r}; GET /v1/thrifty/drift lists them",
                           code="drift_alert_not_found")
        return alert

    def clear(self, alert_id: str) -> DriftAlert:
        """A person has looked: close the alert, lift its demotion, and let the signal's
        detector learn the current behaviour as its new baseline. Clearing a cleared
        alert changes nothing."""
        alert = self.get(alert_id)
        if not alert.active:
            return alert
        alert.cleared_at = self.clock.now()
        del self._open[alert_id]
        self._cleared.append(alert)
        tracker = self._trackers.get(alert.key)
        if tracker is not None:
            tracker.open.pop(alert.signal, None)
            detector = tracker.detectors.get(alert.signal)
            if detector is not None:
                detector.reset()
        if self._demoted.get(alert.key) == alert_id:
            del self._demoted[alert.key]
            other = next((a.id for a in self._open.values()
                          if a.key == alert.key and a.demoted), None)
            if other is not None:
                self._demoted[alert.key] = other
        log.info("drift alert %s cleared: %s", alert.id, alert.describe())
        if self.webhook is not None:
            self.webhook.send({"event": "drift.cleared", "alert": alert.to_json()})
        return alert

    async def close(self) -> None:
        if self.webhook is not None:
            await self.webhook.close()


def build_monitor(cfg: DriftConfig, clock: Clock) -> DriftMonitor | None:
    """The monitor the config asks for, or None when drift detection is off."""
    if not cfg.enabled:
        return None
    hook = cfg.webhook
    sender = None
    if hook is not None:
        sender = WebhookSender(hook.url, {k: v.get_secret_value() for k, v in
                                          hook.headers.items()},
                               timeout_s=hook.timeout_s, queue_size=hook.queue_size)
    return DriftMonitor(cfg, clock, webhook=sender)
