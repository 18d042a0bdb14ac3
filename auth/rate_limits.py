"""Brute force on the authorization server: rate limits and a per-account lockout.

- Per address: every request to /auth/token, /auth/introspect and the login page (POST
  /auth/authorize) counts against a moving one-minute window (`limits`, in memory).
- Per client: only failed client authentications count (a bad secret or assertion). Counting every
  request would throttle the CHW app, one public client shared by every CHW.
- Per account: after a few wrong passwords in a row the account is locked for a delay that doubles
  with each further wrong password (30 s, 60 s, ... up to an hour); while locked the password is
  not even checked, so guessing gains nothing. A right password resets it.

State is per worker process (with `--workers N` an attacker gets at most N times the rate), and
bounded: the least recently seen accounts are forgotten past 100,000.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

from limits import RateLimitItemPerMinute
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

_MAX_ACCOUNTS = 100_000


@dataclass
class _Failures:
    count: int = 0
    locked_until: float = 0.0


class AuthThrottle:
    def __init__(
        self,
        *,
        per_address_per_minute: int,
        client_failures_per_minute: int,
        failures_before_lockout: int,
        lockout_seconds: float,
        lockout_max_seconds: float,
    ) -> None:
        self._limiter = MovingWindowRateLimiter(MemoryStorage())
        self._per_address = RateLimitItemPerMinute(per_address_per_minute)
        self._client_failures = RateLimitItemPerMinute(client_failures_per_minute)
        self._threshold = failures_before_lockout
        self._base = lockout_seconds
        self._max = lockout_max_seconds
        self._accounts: OrderedDict[str, _Failures] = OrderedDict()
        self._lock = threading.Lock()

    def reset(self) -> None:
        """Forget every count and lockout (the tests start each case afresh)."""
        self._limiter.storage.reset()
        with self._lock:
            self._accounts.clear()

    def address_wait(self, endpoint: str, address: str) -> float:
        """Seconds to wait before this address may call `endpoint` again (0: go ahead; counts the call)."""
        if self._limiter.hit(self._per_address, "address", endpoint, address):
            return 0.0
        return self._retry_after(self._per_address, "address", endpoint, address)

    def client_wait(self, client_id: str) -> float:
        """Seconds before `client_id` may try to authenticate again after too many failures."""
        if self._limiter.test(self._client_failures, "client", client_id):
            return 0.0
        return self._retry_after(self._client_failures, "client", client_id)

    def client_failed(self, client_id: str) -> None:
        self._limiter.hit(self._client_failures, "client", client_id)

    def account_wait(self, username: str) -> float:
        """Seconds the account stays locked (0: the password may be checked)."""
        with self._lock:
            failures = self._accounts.get(username)
            return max(0.0, failures.locked_until - time.monotonic()) if failures else 0.0

    def login_failed(self, username: str) -> float:
        """Record a wrong password; the lockout it starts, in seconds (0: none yet)."""
        with self._lock:
            failures = self._accounts.pop(username, None) or _Failures()
            self._accounts[username] = failures  # most recently seen last
            while len(self._accounts) > _MAX_ACCOUNTS:
                self._accounts.popitem(last=False)
            failures.count += 1
            beyond = failures.count - self._threshold
            if beyond < 0:
                return 0.0
            delay = min(self._base * 2 ** min(beyond, 32), self._max)
            failures.locked_until = time.monotonic() + delay
            return delay

    def login_succeeded(self, username: str) -> None:
        with self._lock:
            self._accounts.pop(username, None)

    def _retry_after(self, item: RateLimitItemPerMinute, *keys: str) -> float:
        stats = self._limiter.get_window_stats(item, *keys)
        return max(1.0, math.ceil(stats.reset_time - time.time()))
