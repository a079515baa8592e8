"""Whether a server error frame refuses a private subscription, and what to do about it.

Backpack does not document the code of a refused signature; the simulator uses 4003.
Messages are matched as a fallback. Pure: the frame's code and text in, a verdict out.
"""

from __future__ import annotations

__all__ = ["auth_hint", "refuses_subscription"]

_AUTH_CODES = {4003}
_AUTH_WORDS = ("signature", "api key", "unauthori", "expired")


def refuses_subscription(code: int | None, message: str) -> bool:
    """Whether an error frame (its ``code`` and ``message``) refuses a signature."""
    lowered = message.lower()
    return code in _AUTH_CODES or any(w in lowered for w in _AUTH_WORDS)


def auth_hint(message: str) -> str:
    """What to do about a refused subscription, from the server's reason."""
    message = message.lower()
    if "expired" in message or "timestamp" in message:
        return (
            "this machine's clock differs from the exchange's by more than the "
            "signature window: synchronise it (NTP)"
        )
    if "api key" in message:
        return (
            "BPX_API_SECRET is not the secret of an API key of this account: "
            "set the secret of a key pair created for it"
        )
    if "signature" in message:
        return "the signature did not verify: set the full base64 secret, unchanged"
    return "check BPX_API_SECRET and the clock"
