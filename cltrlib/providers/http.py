"""JSON over HTTP with retries: exponential backoff, Retry-After honoured, clear errors. The one retry helper of
the suite: generation providers (``cltrlib.providers.openai``) and translation backends
(``cltrlib.jhumaneval.backends``) both go through ``request_json``.

Remote APIs and model servers rate-limit (429) and fail transiently (5xx, dropped or reset connections, a server
restarting); a run of 164 prompts must ride through both without losing what it already has, and fail with an error
that names the server and the status when retrying cannot help.
"""

from __future__ import annotations

import email.utils
import random
import threading
import time
from dataclasses import dataclass

import requests

RETRY_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
# Transport failures worth another try: refused/reset connections, timeouts, a body cut off mid-stream.
RETRY_EXCEPTIONS = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)


class RequestError(RuntimeError):
    """A request failed for good (after retries) or was answered with something we cannot use."""


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 5
    backoff: float = 1.0  # seconds before the first retry; doubles each time
    max_wait: float = 60.0  # cap on any single wait, Retry-After included
    timeout: float = 120.0  # per request (connect and read)


DEFAULT_POLICY = RetryPolicy()

_sessions = threading.local()


def thread_session() -> requests.Session:
    """One ``requests.Session`` per thread (sessions are not thread-safe; a pool of workers each keeps its own
    connection alive)."""
    sess = getattr(_sessions, "session", None)
    if sess is None:
        sess = _sessions.session = requests.Session()
    return sess


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


def request_json(method: str, url: str, payload: dict | None = None, headers: dict[str, str] | None = None,
                 policy: RetryPolicy = DEFAULT_POLICY, session: requests.Session | None = None,
                 what: str = "request", error: type[RuntimeError] = RequestError) -> dict:
    """Send ``payload`` as JSON (``method`` GET or POST) and return the decoded JSON object; retry what is worth
    retrying (``RETRY_STATUS``, ``RETRY_EXCEPTIONS``) and raise ``error`` naming the URL and the last status when
    it fails for good. A 4xx other than those is not retried (a wrong key or a bad request stays wrong)."""
    sess = session or thread_session()
    last = ""
    for attempt in range(policy.max_retries + 1):
        wait = min(policy.max_wait, policy.backoff * (2 ** attempt)) * (0.75 + 0.5 * random.random())
        try:
            resp = sess.request(method, url, json=payload, headers=headers or {}, timeout=policy.timeout)
        except RETRY_EXCEPTIONS as exc:
            last = f"{type(exc).__name__}: {exc}"
        else:
            if resp.status_code in RETRY_STATUS:
                last = f"HTTP {resp.status_code}: {resp.text[:200]}"
                ra = retry_after_seconds(resp.headers.get("Retry-After"))
                if ra is not None:
                    wait = min(policy.max_wait, ra)
            elif resp.status_code >= 400:
                raise error(f"{what} to {url} failed with HTTP {resp.status_code}: {resp.text[:300]}")
            else:
                try:
                    data = resp.json()
                except ValueError:
                    raise error(f"{what} to {url}: response is not JSON: {resp.text[:200]!r}") from None
                if not isinstance(data, dict):
                    raise error(f"{what} to {url}: expected a JSON object, got {type(data).__name__}")
                return data
        if attempt < policy.max_retries:
            time.sleep(wait)
    raise error(f"{what} to {url} failed after {policy.max_retries + 1} attempts; last error: {last}")


def post_json(url: str, payload: dict, headers: dict[str, str] | None = None,
              policy: RetryPolicy = DEFAULT_POLICY, session: requests.Session | None = None,
              what: str = "request", error: type[RuntimeError] = RequestError) -> dict:
    """``request_json`` with POST."""
    return request_json("POST", url, payload, headers, policy, session, what, error)
