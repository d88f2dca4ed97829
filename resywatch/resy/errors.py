"""What can go wrong when talking to Resy, as typed errors.

`permanent` decides retrying: asking again cannot fix an auth, payment, slot-gone or
conflict error; it may fix a 5xx, a firewall hiccup, a timeout or a 429.
`kind` is the short name written to `api_call_log.error_kind`.
"""

from __future__ import annotations

from datetime import UTC, datetime

from resywatch.errors import ResywatchError


class ResyError(ResywatchError):
    """Resy answered with an error."""

    code = "resy_error"
    kind = "error"
    permanent = True
    rate_limiting = False  # Resy (or our breaker, on its behalf) says: slow down

    def __init__(self, message: str | None = None, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class AuthError(ResyError):
    """Resy refused the credentials (419 or a redirect to its login page)."""

    code = kind = "auth"


class AuthExpired(AuthError):
    """Resy no longer accepts the user's token (302 or 419 on a user call): log in again."""

    code = "auth_expired"


class RefreshRefused(AuthError):
    """Resy refused the refresh cookie: log in again (`resywatch auth login`)."""

    code = "refresh_refused"


class LoginRefused(AuthError):
    """Resy refused the email and password of a login (419)."""

    code = kind = "login_refused"


class PaymentRequired(ResyError):
    """This booking needs a card on file (402): add one on resy.com."""

    code = kind = "payment_required"


class PaymentNotAccepted(ResyError):
    """This venue is not set up to accept payment methods (403)."""

    code = kind = "payment_not_accepted"


class Blocked(ResyError):
    """Resy's firewall (Imperva) blocked the request (403)."""

    code = kind = "blocked"
    permanent = False


class CaptchaRequired(ResyError):
    """The venue asks for a captcha to book (`feature_recaptcha`): book it in the Resy app."""

    code = kind = "captcha_required"


class NotFound(ResyError):
    """Resy does not know that (404)."""

    code = kind = "not_found"


class SlotGone(ResyError):
    """The slot was taken before it could be booked (404)."""

    code = kind = "slot_gone"


class Conflict(ResyError):
    """Resy refused the booking as a conflict (412): you may already hold this reservation."""

    code = kind = "conflict"

    def __init__(
        self,
        message: str | None = None,
        *,
        status: int | None = 412,
        reservation_id: int | None = None,
        resy_token: str | None = None,
    ) -> None:
        super().__init__(message, status=status)
        # Resy sometimes answers 412 to a booking that went through; the body then says so.
        self.reservation_id = reservation_id
        self.resy_token = resy_token


class BadRequest(ResyError):
    """Resy rejected the request as malformed."""

    code = kind = "bad_request"


class RateLimited(ResyError):
    """Resy asked us to slow down (429)."""

    code = kind = "rate_limited"
    permanent = False
    rate_limiting = True

    def __init__(
        self, message: str | None = None, *, status: int | None = 429, retry_after: float | None
    ) -> None:
        super().__init__(message, status=status)
        self.retry_after = retry_after


class ServerError(ResyError):
    """Resy failed (5xx); often a missing browser header, a firewall challenge or overload."""

    code = kind = "server_error"
    permanent = False


class ResyTimeout(ResyError):
    """Resy did not answer within the deadline."""

    code = kind = "timeout"
    permanent = False


class ConnectionFailed(ResyError):
    """Resy could not be reached."""

    code = kind = "connection"
    permanent = False


class CircuitOpen(ResyError):
    """Resy is left alone for now: its circuit breaker is open after repeated failures."""

    code = kind = "circuit_open"
    # Not retried within the call: the breaker, shared by every worker, decides when Resy is
    # asked again. No request was made, so it is never counted as a failure of Resy's.
    permanent = True

    def __init__(
        self,
        message: str | None = None,
        *,
        until: datetime | None = None,
        failures: int = 0,
        reason: str | None = None,
        rate_limiting: bool = False,
    ) -> None:
        if message is None and until is not None:
            message = (
                f"Resy circuit breaker open until {until.astimezone(UTC):%H:%M:%S} UTC "
                f"after {failures} failures" + (f": {reason}" if reason else "")
            )
        super().__init__(message)
        self.until, self.failures, self.reason = until, failures, reason
        self.rate_limiting = rate_limiting  # opened by 429s: the caller is being rate limited


class MissingCredentials(ResyError):
    """No Resy API key: set RESYWATCH_RESY_API_KEY (or `[resy] api_key` in the config file)."""

    code = kind = "missing_credentials"
