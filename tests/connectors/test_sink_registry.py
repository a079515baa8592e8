import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest

from bpx_flows.connectors.errors import ConfigError
from bpx_flows.connectors.sinks import registry
from bpx_flows.connectors.sinks.jsonl import JsonLinesSink
from bpx_flows.connectors.sinks.registry import make_sink, sink_names
from bpx_flows.connectors.sinks.webhook import WebhookSink


@pytest.mark.parametrize(
    ("spec", "kind"),
    [
        pytest.param("stdout", "LineSink", id="stdout"),
        pytest.param("stdout:json", "LineSink", id="stdout-json"),
        pytest.param(
            "jsonl:out.jsonl,max_mb=1,every_s=60", "JsonLinesSink", id="jsonl"
        ),
        pytest.param("parquet:data", "ParquetSink", id="parquet"),
        pytest.param(
            "webhook:http://127.0.0.1:9/x,format=slack", "WebhookSink", id="webhook"
        ),
    ],
)
def test_built_in_sinks_by_spec(spec: str, kind: str) -> None:
    assert type(make_sink(spec)).__name__ == kind


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        pytest.param(
            "nope", "unknown sink 'nope'; available: jsonl, kafka", id="unknown"
        ),
        pytest.param("jsonl", "needs a path", id="jsonl-no-path"),
        pytest.param("jsonl:x,max_mb=big", "must be numbers", id="jsonl-bad-number"),
        pytest.param(
            "jsonl:x,colour=red", "unknown jsonl option", id="jsonl-unknown-option"
        ),
        pytest.param("webhook:ftp://x", "http(s) URL", id="webhook-scheme"),
        pytest.param(
            "webhook:http://x,format=xml", "json, slack or discord", id="webhook-format"
        ),
        pytest.param("stdout:yaml", "takes 'json'", id="stdout-format"),
        pytest.param("kafka:nobrokers", "BROKERS/TOPIC", id="kafka-spec"),
        pytest.param("kafka:h:70000/t", "port 1-65535", id="kafka-port"),
        pytest.param("kafka:h:1/t,acks=2", "acks must be", id="kafka-acks"),
        pytest.param("kafka:h:1/t,compression=xz", "compression", id="kafka-zip"),
        pytest.param("kafka:h:1/t,timeout_s=nan", "timeout_s", id="kafka-nan"),
        pytest.param("kafka:h:1/t,colour=red", "unknown kafka", id="kafka-option"),
        pytest.param("kafka:h:1/a b", "kafka topic", id="kafka-topic"),
    ],
)
def test_bad_specs_say_what_to_do(spec: str, fragment: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(fragment)):
        make_sink(spec)


def test_the_kafka_sink_without_its_extra_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "confluent_kafka", None)  # not installed
    with pytest.raises(ConfigError, match=re.escape("pip install 'bpx-flows[kafka]'")):
        make_sink("kafka:localhost:9092/bpx")


def test_plugins_come_from_the_entry_point_group(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    made: list[str] = []

    class Plugin:
        name = "mine"

        @staticmethod
        def load() -> Any:
            def factory(argument: str) -> Any:
                made.append(argument)
                return JsonLinesSink("plugin.jsonl")

            return factory

    def fake_entry_points(group: str) -> list[Any]:
        assert group == registry.ENTRY_POINT_GROUP
        return [Plugin()]

    monkeypatch.setattr(registry, "entry_points", fake_entry_points)
    assert "mine" in sink_names()
    assert isinstance(make_sink("mine:opt"), JsonLinesSink)
    assert made == ["opt"]


def test_jsonl_rotates_by_size(tmp_path: Path) -> None:
    part = JsonLinesSink(tmp_path / "a.jsonl", max_bytes=100).build("s", 0, 1)
    for n in range(10):
        part.write_batch([{"n": n, "pad": "x" * 30}])
    part.close()
    files = sorted(tmp_path.glob("a*.jsonl"))
    assert len(files) > 3
    lines = [json.loads(line) for f in files for line in f.read_text().splitlines()]
    assert sorted(x["n"] for x in lines) == list(range(10))  # nothing lost


def test_stdout_json(capsys: pytest.CaptureFixture[str]) -> None:
    part = make_sink("stdout:json").build("s", 0, 1)
    part.write_batch([{"a": 1}])
    assert capsys.readouterr().out == '{"a":1}\n'


def test_webhook_sink_type() -> None:
    assert isinstance(make_sink("webhook:https://example.invalid/hook"), WebhookSink)
