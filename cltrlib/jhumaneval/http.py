"""POST JSON with retries: exponential backoff, Retry-After honoured, clear errors.

Translation APIs rate-limit (429) and fail transiently (5xx, dropped connections); a
build of 164 prompts must ride through both without losing what it already has.
"""

from __future__ import annotations

import email.utils
import random
import time
from dataclasses import dataclass

import requests

RETRY_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


class TranslationError(RuntimeError):
    """A backend failed for good (after retries) or answered something we cannot use."""


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 5
    backoff: float = 1.0  # seconds before the first retry; doubles each time
    max_wait: float = 60.0  # cap on any single wait, Retry-After included
    timeout: float = 120.0  # per request


DEFAULT_POLICY = RetryPolicy()


def retry_after_seconds(value: str | None) -> float | None:
    """Retry-After as seconds: either delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def post_json(url: str, payload: dict, headers: dict[str, str] | None = None,
              policy: RetryPolicy = DEFAULT_POLICY, session: requests.Session | None = None,
              what: str = "request") -> dict:
    """POST ``payload`` as JSON and return the decoded JSON object; retry what is worth retrying."""
    sess = session or requests.Session()
    last = ""
    for attempt in range(policy.max_retries + 1):
        wait = min(policy.max_wait, policy.backoff * (2 ** attempt)) * (0.75 + 0.5 * random.random())
        try:
            resp = sess.post(url, json=payload, headers=headers or {}, timeout=policy.timeout)
        except (requests.ConnectionError, requests.Timeout) as exc:
            last = f"{type(exc).__name__}: {exc}"
        else:
            if resp.status_code in RETRY_STATUS:
                last = f"HTTP {resp.status_code}: {resp.text[:200]}"
                ra = retry_after_seconds(resp.headers.get("Retry-After"))
                if ra is not None:
                    wait = min(policy.max_wait, ra)
            elif resp.status_code >= 400:
                raise TranslationError(f"{what} to {url} failed with HTTP {resp.status_code}: {resp.text[:300]}")
            else:
                try:
                    data = resp.json()
                except ValueError:
                    raise TranslationError(f"{what} to {url}: response is not JSON: {resp.text[:200]!r}") from None
                if not isinstance(data, dict):
                    raise TranslationError(f"{what} to {url}: expected a JSON object, got {type(data).__name__}")
                return data
        if attempt < policy.max_retries:
            time.sleep(wait)
    raise TranslationError(f"{what} to {url} failed after {policy.max_retries + 1} attempts; last error: {last}")
