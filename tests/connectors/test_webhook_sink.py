"""The webhook sink against a local HTTP server that fails, times out and recovers."""

from __future__ import annotations

import json
import threading
import time
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from bpx_flows.connectors import metrics as m
from bpx_flows.connectors.backpack.wire import Side
from bpx_flows.connectors.sinks.webhook import WebhookConfig, WebhookSink
from bpx_flows.operators.bursts import BurstAlert, BurstPhase, Severity
from bpx_flows.presentation import describe


def alert(n: int) -> BurstAlert:
    return BurstAlert(
        burst_id=f"SOL_USDC_PERP:Ask:{n}",
        phase=BurstPhase.STARTED,
        symbol="SOL_USDC_PERP",
        side=Side.ASK,
        start_us=n,
        detected_us=n,
        end_us=None,
        peak_window_notional=Decimal(5000),
        total_notional=Decimal(5000),
        count=9,
        threshold=Decimal(1000),
        baseline=None,
        severity=Severity.HIGH,
    )


class Endpoint:
    """An HTTP server on 127.0.0.1 answering by a script, then 200."""

    def __init__(self, script: list[Any]) -> None:
        self.script = list(script)
        self.bodies: list[dict] = []
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                action = endpoint.script.pop(0) if endpoint.script else 200
                if action == "hang":
                    time.sleep(0.6)
                    action = 200
                endpoint.bodies.append(json.loads(body))
                self.send_response(action)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def endpoint_factory():
    made: list[Endpoint] = []

    def make(script: list[Any]) -> Endpoint:
        made.append(Endpoint(script))
        return made[-1]

    yield make
    for endpoint in made:
        endpoint.close()


def wait_until(condition, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def counter(metric: Any, *labels: str) -> float:
    return metric.labels(*labels)._value.get()


def test_failures_and_a_timeout_are_retried_until_delivered(endpoint_factory) -> None:
    endpoint = endpoint_factory([500, 503, "hang"])
    config = WebhookConfig(
        endpoint.url, timeout_s=0.3, retries=5, backoff_initial_s=0.01
    )
    sink = WebhookSink(config, name="t1")
    part = sink.build("alerts", 0, 1)
    errors_before = counter(m.SINK_ERRORS, "t1")
    start = time.monotonic()
    part.write_batch([alert(1), alert(2), alert(3)])
    assert time.monotonic() - start < 0.1  # the flow never waits on the endpoint
    wait_until(lambda: part.delivered == 3)
    part.close()
    delivered = {body["burst_id"] for body in endpoint.bodies}
    assert delivered == {f"SOL_USDC_PERP:Ask:{n}" for n in (1, 2, 3)}
    assert counter(m.SINK_ERRORS, "t1") - errors_before == 3  # 500, 503, timeout


def test_a_refused_payload_is_dropped_and_counted(endpoint_factory) -> None:
    endpoint = endpoint_factory([400])
    sink = WebhookSink(WebhookConfig(endpoint.url, backoff_initial_s=0.01), name="t2")
    part = sink.build("alerts", 0, 1)
    part.write_batch([alert(1)])
    wait_until(lambda: counter(m.SINK_DROPPED, "t2") == 1)
    part.close()
    assert part.delivered == 0 and len(endpoint.bodies) == 1  # no retry of a 4xx


def test_a_full_queue_drops_the_oldest(endpoint_factory) -> None:
    endpoint = endpoint_factory(["hang"] * 3)
    config = WebhookConfig(endpoint.url, timeout_s=2.0, max_queue=2)
    part = WebhookSink(config, name="t3").build("alerts", 0, 1)
    part.write_batch([alert(n) for n in range(10)])
    assert counter(m.SINK_DROPPED, "t3") >= 7
    part.close()


def test_slack_format(endpoint_factory) -> None:
    endpoint = endpoint_factory([])
    config = WebhookConfig(endpoint.url, format="slack")
    part = WebhookSink(config, name="t4", render=describe).build("a", 0, 1)
    part.write_batch([alert(1)])
    wait_until(lambda: part.delivered == 1)
    part.close()
    assert "BURST STARTED" in endpoint.bodies[0]["text"]
