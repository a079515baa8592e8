"""ED25519 signatures for private (``account.*``) subscriptions.

The signed string is exactly ``instruction=subscribe&timestamp=<ms>&window=<ms>``; the
frame carries ``[verifying_key_b64, signature_b64, "<timestamp ms>", "<window ms>"]``.
The secret is the base64 32-byte seed (a 64-byte secret key is accepted: its first 32
bytes are the seed). It is never printed: ``repr`` shows the public key only.
"""

from __future__ import annotations

import base64
import binascii
import os
from pathlib import Path

import nacl.exceptions
import nacl.signing

from ..errors import AuthError, ConfigError

__all__ = [
    "DEFAULT_WINDOW_MS",
    "MAX_WINDOW_MS",
    "Credentials",
    "signing_string",
    "verify_subscribe",
]

DEFAULT_WINDOW_MS = 5_000
MAX_WINDOW_MS = 60_000
SECRET_ENV = "BPX_API_SECRET"
SECRET_FILE_ENV = "BPX_API_SECRET_FILE"
KEY_ENV = "BPX_API_KEY"


def signing_string(timestamp_ms: int, window_ms: int) -> bytes:
    """The exact bytes that are signed for a subscription."""
    return f"instruction=subscribe&timestamp={timestamp_ms}&window={window_ms}".encode()


class Credentials:
    """An API key pair able to sign subscriptions; never shows its secret."""

    __slots__ = ("_key", "public_key")

    def __init__(self, signing_key: nacl.signing.SigningKey) -> None:
        self._key = signing_key
        self.public_key: str = base64.b64encode(bytes(signing_key.verify_key)).decode()

    @classmethod
    def from_secret(cls, secret_b64: str) -> Credentials:
        """Build from a base64 secret.

        Raises:
            ConfigError: the secret is not base64 of 32 or 64 bytes (the secret itself
                is not part of the message).
        """
        try:
            raw = base64.b64decode(secret_b64.strip(), validate=True)
        except (binascii.Error, ValueError):
            msg = (
                "the API secret is not valid base64; paste the secret exactly as issued"
            )
            raise ConfigError(msg) from None
        if len(raw) not in (32, 64):
            msg = (
                f"the API secret decodes to {len(raw)} bytes; an ED25519 secret is "
                "32 bytes (a 64-byte secret key also works)"
            )
            raise ConfigError(msg)
        return cls(nacl.signing.SigningKey(raw[:32]))

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> Credentials:
        """Read the base64 secret from a file (surrounding white space ignored).

        Raises:
            ConfigError: the file cannot be read or holds no valid secret.
        """
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            msg = f"cannot read the API secret file {str(path)!r}: {exc.strerror}"
            raise ConfigError(msg) from None
        except UnicodeDecodeError:
            msg = (
                f"the API secret file {str(path)!r} is not text: it must hold the "
                "base64 secret on one line"
            )
            raise ConfigError(msg) from None
        return cls.from_secret(text)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Credentials | None:
        """Credentials from ``BPX_API_SECRET`` or ``BPX_API_SECRET_FILE``, or ``None``.

        If ``BPX_API_KEY`` is also set it must match the secret's public key.

        Raises:
            ConfigError: a variable is set but invalid, or key and secret disagree.
        """
        environ = os.environ if env is None else env
        if environ.get(SECRET_ENV):
            creds = cls.from_secret(environ[SECRET_ENV])
        elif environ.get(SECRET_FILE_ENV):
            creds = cls.from_file(environ[SECRET_FILE_ENV])
        else:
            return None
        expected = environ.get(KEY_ENV)
        if expected and expected.strip() != creds.public_key:
            msg = (
                f"{KEY_ENV} ({expected.strip()}) is not the public key of the secret "
                f"({creds.public_key}); set the key and secret of the same API key pair"
            )
            raise ConfigError(msg)
        return creds

    def sign_subscribe(
        self, timestamp_ms: int, window_ms: int = DEFAULT_WINDOW_MS
    ) -> list[str]:
        """The ``signature`` array of a SUBSCRIBE frame.

        Args:
            timestamp_ms: the current time, Unix milliseconds.
            window_ms: how long the signature stays valid, milliseconds (max 60,000).
        """
        if not 0 < window_ms <= MAX_WINDOW_MS:
            msg = f"signature window {window_ms} ms is outside 1..{MAX_WINDOW_MS} ms"
            raise ConfigError(msg)
        signed = self._key.sign(signing_string(timestamp_ms, window_ms))
        signature = base64.b64encode(signed.signature).decode()
        return [self.public_key, signature, str(timestamp_ms), str(window_ms)]

    def __repr__(self) -> str:
        return f"Credentials(public_key={self.public_key!r})"


def verify_subscribe(signature: object, now_ms: int) -> str:
    """Check a SUBSCRIBE ``signature`` array as the exchange does.

    Args:
        signature: the ``signature`` value of the frame, as decoded from JSON.
        now_ms: the server's current time, Unix milliseconds.

    Returns:
        The verifying key (base64) that signed.

    Raises:
        AuthError: malformed array, bad key, bad signature, window out of bounds, or a
            timestamp outside its window.
    """
    if (
        not isinstance(signature, list)
        or len(signature) != 4
        or not all(isinstance(x, str | int) for x in signature)
    ):
        msg = "signature must be [verifyingKey, signature, timestamp, window]"
        raise AuthError(msg)
    key_b64, sig_b64, ts_text, window_text = (str(x) for x in signature)
    try:
        timestamp_ms, window_ms = int(ts_text), int(window_text)
    except ValueError:
        msg = "signature timestamp and window must be integers (milliseconds)"
        raise AuthError(msg) from None
    if not 0 < window_ms <= MAX_WINDOW_MS:
        msg = f"window {window_ms} ms is outside 1..{MAX_WINDOW_MS}"
        raise AuthError(msg)
    # A client clock running ahead is tolerated by up to one window, as for one behind.
    skew_ms = now_ms - timestamp_ms
    if not -window_ms < skew_ms < window_ms:
        msg = (
            f"signature expired: its timestamp is {skew_ms} ms from server time and "
            f"the window is {window_ms} ms; check the clock or widen the window"
        )
        raise AuthError(msg)
    try:
        key = nacl.signing.VerifyKey(base64.b64decode(key_b64, validate=True))
        key.verify(signing_string(timestamp_ms, window_ms), base64.b64decode(sig_b64))
    except (binascii.Error, ValueError, nacl.exceptions.CryptoError):
        msg = "invalid signature"
        raise AuthError(msg) from None
    return key_b64
