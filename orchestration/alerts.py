"""Failure alerts: what failed (job, run, assets, checks, reason) as one log line and, when
CDP_ALERT_WEBHOOK_URL is set, a JSON POST to it (Slack/Teams-style incoming webhook).

Alert text passes through `scrub`, so an error message that quotes a value from the data can
never carry an email address or phone number out."""

from __future__ import annotations

import logging
import os
import re
from dataclasses import asdict, dataclass, field

import requests

WEBHOOK_ENV = "CDP_ALERT_WEBHOOK_URL"
log = logging.getLogger("cdp.alerts")

_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
_PHONE = re.compile(r"(?<![0-9A-Za-z])(?:\+?86[- ]?)?1[3-9][0-9](?:[- ]?[0-9]){8}(?![0-9])")
MAX_REASON_CHARS = 500


def scrub(text: str) -> str:
    return _PHONE.sub("<phone>", _EMAIL.sub("<email>", text))


@dataclass
class Alert:
    job: str
    run_id: str
    failed_steps: list[str] = field(default_factory=list)
    failed_checks: list[str] = field(default_factory=list)
    reason: str = ""
    # Checks of warning severity that did not pass: they stopped nothing, but say what else was off.
    warned_checks: list[str] = field(default_factory=list)

    def text(self) -> str:
        parts = [f"run {self.run_id[:8]} of {self.job} failed"]
        if self.failed_steps:
            parts.append("assets/steps: " + ", ".join(self.failed_steps))
        if self.failed_checks:
            parts.append("checks: " + ", ".join(self.failed_checks))
        if self.reason:
            parts.append("reason: " + self.reason)
        if self.warned_checks:
            parts.append("warnings: " + ", ".join(self.warned_checks))
        return " | ".join(parts)


def build_alert(job: str, run_id: str, failed_steps: list[str], failed_checks: list[str], reason: str,
                warned_checks: list[str] = ()) -> Alert:
    return Alert(job=job, run_id=run_id, failed_steps=sorted(set(failed_steps)),
                 failed_checks=sorted(set(failed_checks)),
                 reason=scrub(" ".join(reason.split()))[:MAX_REASON_CHARS],
                 warned_checks=sorted(set(warned_checks)))


def send(alert: Alert, url: str | None = None, timeout_s: float = 10.0) -> bool:
    """Log the alert; POST it when a webhook URL is configured. True when delivered (or logged only)."""
    log.error(alert.text())
    return deliver(alert, url, timeout_s)


def deliver(alert: Alert, url: str | None = None, timeout_s: float = 10.0) -> bool:
    """POST the alert when a webhook URL is configured. True when delivered or there is none."""
    url = url or os.environ.get(WEBHOOK_ENV)
    if not url:
        return True
    try:
        response = requests.post(url, json={"text": alert.text(), **asdict(alert)}, timeout=timeout_s)
        response.raise_for_status()
        return True
    except requests.RequestException as error:
        log.error(f"alert webhook failed: {type(error).__name__}")
        return False
