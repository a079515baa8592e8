import asyncio
import random

import httpx
import pytest

from bpx_flows.connectors.backpack.retry import Decision, backoff, classify
from bpx_flows.connectors.errors import AuthError, ConfigError, RestError
from bpx_flows.connectors.rest import RestClient, TokenBucket, server_time_us

DEPTH = (
    b'{"asks":[["10.5","1"]],"bids":[["10.4","2"]],"lastUpdateId":"42","timestamp":1}'
)


def client_for(answers: list[httpx.Response], seen: list[httpx.Request]) -> RestClient:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answers.pop(0)

    transport = httpx.MockTransport(handler)
    return RestClient(
        "http://bpx.test", attempts=4, transport=transport, backoff_initial_s=0.001
    )


def run(coro):
    return asyncio.run(coro)


def test_depth_is_typed_and_the_body_kept() -> None:
    seen: list[httpx.Request] = []
    client = client_for([httpx.Response(200, content=DEPTH)], seen)
    snapshot, body = run(client.depth("SOL_USDC", 100))
    assert snapshot.lastUpdateId == 42
    assert snapshot.bids == [("10.4", "2")]
    assert body == DEPTH
    assert seen[0].url.params["limit"] == "100"


@pytest.mark.parametrize("status", [429, 500, 502, 503])
def test_retryable_statuses_are_retried(status: int) -> None:
    seen: list[httpx.Request] = []
    answers = [httpx.Response(status, text="busy"), httpx.Response(200, content=DEPTH)]
    client = client_for(answers, seen)
    snapshot, _ = run(client.depth("SOL_USDC"))
    assert snapshot.lastUpdateId == 42
    assert len(seen) == 2 and client.retries == 1


def test_retry_after_is_honoured() -> None:
    seen: list[httpx.Request] = []
    answers = [
        httpx.Response(429, headers={"Retry-After": "0.2"}, text="slow down"),
        httpx.Response(200, content=DEPTH),
    ]
    client = client_for(answers, seen)
    loop = asyncio.new_event_loop()
    start = loop.time()
    loop.run_until_complete(client.depth("SOL_USDC"))
    assert loop.time() - start >= 0.2
    loop.close()


def test_client_errors_are_fatal_at_once() -> None:
    seen: list[httpx.Request] = []
    bad = httpx.Response(
        400, json={"code": "INVALID_CLIENT_REQUEST", "message": "Invalid market symbol"}
    )
    client = client_for([bad], seen)
    with pytest.raises(RestError, match="Invalid market symbol") as info:
        run(client.depth("NOPE"))
    assert info.value.status == 400 and len(seen) == 1


def test_attempts_are_bounded() -> None:
    seen: list[httpx.Request] = []
    client = client_for([httpx.Response(503, text="down")] * 4, seen)
    with pytest.raises(RestError, match="after 4 attempts: HTTP 503"):
        run(client.depth("SOL_USDC"))
    assert len(seen) == 4


def test_network_errors_are_retried() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        if len(calls) == 1:
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(200, content=DEPTH)

    client = RestClient(
        "http://bpx.test",
        transport=httpx.MockTransport(handler),
        backoff_initial_s=0.001,
    )
    snapshot, _ = run(client.depth("SOL_USDC"))
    assert snapshot.lastUpdateId == 42 and len(calls) == 2


def test_unexpected_answer_is_retried_then_a_clear_error() -> None:
    seen: list[httpx.Request] = []
    client = client_for([httpx.Response(200, text="<html>")] * 4, seen)
    with pytest.raises(RestError, match="unexpected answer"):
        run(client.depth("SOL_USDC"))
    assert len(seen) == 4
    assert client.failures["bad_body"] == 4


@pytest.mark.parametrize(
    ("bad", "kind"),
    [
        pytest.param(
            (200, {"Content-Encoding": "gzip"}, b"not gzip"),
            "bad_encoding",
            id="bad-gzip",
        ),
        pytest.param((200, {}, b"x" * 5000), "too_large", id="big"),
        pytest.param((503, {}, b"busy"), "http_5xx", id="503"),
    ],
)
def test_a_bad_answer_is_counted_and_retried_until_a_good_one(
    bad: tuple[int, dict[str, str], bytes], kind: str
) -> None:
    good = DEPTH
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if len(seen) == 1:
            status, headers, content = bad
            return httpx.Response(status, headers=headers, content=content)
        return httpx.Response(200, content=good)

    client = RestClient(
        "http://bpx.test",
        transport=httpx.MockTransport(handler),
        backoff_initial_s=0.001,
        max_body_bytes=4096,
    )
    snapshot, _ = run(client.depth("SOL_USDC"))
    assert snapshot.lastUpdateId > 0
    assert client.failures[kind] == 1


def test_token_bucket_spaces_requests() -> None:
    bucket = TokenBucket(rate_per_s=100.0, burst=2)
    delays = [bucket.delay_s() for _ in range(4)]
    assert delays[:2] == [0.0, 0.0]
    assert 0.005 < delays[2] <= 0.011
    assert delays[3] > delays[2]


def test_backoff_grows_to_its_cap_with_full_jitter() -> None:
    delays = backoff(0.5, 4.0, 2.0, random.Random(3))
    values = [next(delays) for _ in range(1_008)]
    ceilings = [0.5, 1, 2, 4] + [4] * 1_004
    for value, ceiling in zip(values, ceilings, strict=True):
        assert 0 <= value <= ceiling
    at_cap = values[8:]
    assert min(at_cap) < 0.4 and max(at_cap) > 3.6  # the whole window is used
    assert 1.8 < sum(at_cap) / len(at_cap) < 2.2


@pytest.mark.parametrize(
    ("exc", "decision"),
    [
        pytest.param(AuthError("bad key"), Decision.FATAL, id="auth"),
        pytest.param(ConfigError("bad stream"), Decision.FATAL, id="config"),
        pytest.param(RestError("x", 503), Decision.RETRY, id="rest-503"),
        pytest.param(RestError("x", 429), Decision.RETRY, id="rest-429"),
        pytest.param(RestError("x", 404), Decision.FATAL, id="rest-404"),
        pytest.param(RestError("x", None), Decision.RETRY, id="rest-network"),
        pytest.param(ConnectionRefusedError(), Decision.RETRY, id="refused"),
        pytest.param(TimeoutError(), Decision.RETRY, id="timeout"),
        pytest.param(KeyError("bug"), Decision.FATAL, id="bug"),
    ],
)
def test_classify(exc: BaseException, decision: Decision) -> None:
    assert classify(exc) is decision


def test_refused_websocket_upgrade_is_fatal_unless_5xx() -> None:
    from bpx_flows.connectors.wsclient import HandshakeError

    assert classify(HandshakeError("x", 404)) is Decision.FATAL
    assert classify(HandshakeError("x", 503)) is Decision.RETRY


def test_the_server_time_is_the_date_less_the_age() -> None:
    date = "Tue, 01 Dec 2026 18:00:00 GMT"
    at = 1_796_148_000 * 1_000_000
    assert server_time_us(httpx.Headers({"Date": date})) == at
    assert server_time_us(httpx.Headers({"Date": date, "Age": "3"})) == at - 3_000_000
    for bad in ({}, {"Date": "yesterday"}, {"Date": date, "Age": "-1"}):
        assert server_time_us(httpx.Headers(bad)) is None


def test_plain_http_clients_skip_the_ca_bundle_and_fail_closed_on_tls() -> None:
    """The simulator's http endpoint needs no CA bundle (30-70 ms of CPU a client);
    the context it gets instead still verifies and trusts nothing."""
    import ssl

    from bpx_flows.connectors.rest import _tls_for

    plain = _tls_for("http://127.0.0.1:9")
    assert isinstance(plain, ssl.SSLContext)
    assert plain.verify_mode is ssl.CERT_REQUIRED and plain.check_hostname
    assert plain.get_ca_certs() == []
    assert _tls_for("https://api.backpack.exchange") is True  # the CA bundle


@pytest.mark.timeout(60)
def test_a_client_loads_what_its_first_request_would_import() -> None:
    import subprocess
    import sys

    probe = (
        "import sys\n"
        "from bpx_flows.connectors.rest import RestClient\n"
        "before = 'anyio._backends._asyncio' in sys.modules\n"
        "RestClient('http://127.0.0.1:9')\n"
        "print(before, 'anyio._backends._asyncio' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        timeout=50,
        check=True,
    )
    # Not with the module (a command that never fetches pays nothing), with a client.
    assert done.stdout.split() == ["False", "True"]
