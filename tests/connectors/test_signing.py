import base64

import nacl.signing
import pytest

from bpx_flows.connectors.backpack import Credentials, signing_string, verify_subscribe
from bpx_flows.connectors.errors import AuthError, ConfigError
from tests.conftest import OTHER_SECRET, TEST_SECRET

NOW_MS = 1_790_000_000_000


def test_signing_string_is_exact() -> None:
    assert signing_string(1614550000000, 5000) == (
        b"instruction=subscribe&timestamp=1614550000000&window=5000"
    )


def test_signature_verifies_with_the_public_key(credentials: Credentials) -> None:
    key, sig, ts, window = credentials.sign_subscribe(NOW_MS, 5000)
    assert (ts, window) == (str(NOW_MS), "5000")
    verify_key = nacl.signing.VerifyKey(base64.b64decode(key))
    verify_key.verify(signing_string(NOW_MS, 5000), base64.b64decode(sig))
    assert verify_subscribe([key, sig, ts, window], NOW_MS + 10) == key


def test_tampered_signature_is_rejected(credentials: Credentials) -> None:
    key, sig, ts, window = credentials.sign_subscribe(NOW_MS)
    raw = bytearray(base64.b64decode(sig))
    raw[0] ^= 1
    with pytest.raises(AuthError, match="invalid signature"):
        verify_subscribe([key, base64.b64encode(raw).decode(), ts, window], NOW_MS)
    with pytest.raises(AuthError, match="invalid signature"):
        verify_subscribe([key, sig, str(NOW_MS + 1), window], NOW_MS)


def test_expired_signature_is_rejected(credentials: Credentials) -> None:
    signature = credentials.sign_subscribe(NOW_MS, 5000)
    with pytest.raises(AuthError, match="expired"):
        verify_subscribe(signature, NOW_MS + 5000)
    with pytest.raises(AuthError, match="expired"):
        verify_subscribe(signature, NOW_MS - 5000)


def test_malformed_signature_array_is_rejected() -> None:
    with pytest.raises(AuthError, match="must be"):
        verify_subscribe(["a", "b"], NOW_MS)
    with pytest.raises(AuthError, match="integers"):
        verify_subscribe(["a", "b", "x", "5000"], NOW_MS)


def test_secret_is_never_shown(credentials: Credentials) -> None:
    assert TEST_SECRET not in repr(credentials)
    assert credentials.public_key in repr(credentials)


@pytest.mark.parametrize(
    ("secret", "fragment"),
    [
        pytest.param("not base64!", "not valid base64", id="not-base64"),
        pytest.param(base64.b64encode(b"short").decode(), "5 bytes", id="short"),
    ],
)
def test_bad_secret_gives_an_actionable_error(secret: str, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment) as info:
        Credentials.from_secret(secret)
    assert secret not in str(info.value) or fragment in secret


def test_64_byte_secret_key_uses_its_seed() -> None:
    seed = base64.b64decode(TEST_SECRET)
    full = seed + bytes(nacl.signing.SigningKey(seed).verify_key)
    assert (
        Credentials.from_secret(base64.b64encode(full).decode()).public_key
        == Credentials.from_secret(TEST_SECRET).public_key
    )


def test_credentials_from_env_and_file(tmp_path, credentials: Credentials) -> None:
    assert Credentials.from_env({}) is None
    from_env = Credentials.from_env({"BPX_API_SECRET": TEST_SECRET})
    assert from_env is not None and from_env.public_key == credentials.public_key
    key_file = tmp_path / "key"
    key_file.write_text(TEST_SECRET + "\n")
    from_file = Credentials.from_env({"BPX_API_SECRET_FILE": str(key_file)})
    assert from_file is not None and from_file.public_key == credentials.public_key
    with pytest.raises(ConfigError, match="cannot read"):
        Credentials.from_file(tmp_path / "missing")


def test_key_and_secret_must_belong_together(credentials: Credentials) -> None:
    other = Credentials.from_secret(OTHER_SECRET)
    env = {"BPX_API_SECRET": TEST_SECRET, "BPX_API_KEY": other.public_key}
    with pytest.raises(ConfigError, match="is not the public key"):
        Credentials.from_env(env)


def test_window_is_bounded(credentials: Credentials) -> None:
    with pytest.raises(ConfigError, match="window"):
        credentials.sign_subscribe(NOW_MS, 60_001)
