"""Settings are validated once, in one place: each bad input, one clear error."""

from __future__ import annotations

import re
import socket
import typing
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pytest

from bpx_flows.connectors.errors import ConfigError
from bpx_flows.registry import FLOWS, SECTIONS
from bpx_flows.settings import (
    Settings,
    history_s,
    load_settings,
    merge_overrides,
    settings_from_data,
    settings_to_data,
    validate,
    wake_times,
)

SESSION = (
    Path(__file__).resolve().parents[1] / "data" / "sessions" / "sim-session.jsonl.gz"
)
BASE = {"flow": "market", "symbols": ["SOL_USDC"]}


def _numeric_keys() -> list[tuple[str, type]]:
    """Every numeric key of the settings file: (dotted key, base type)."""
    tables: dict[str, Any] = {
        f.name: f.type
        for f in msgspec.structs.fields(Settings)
        if isinstance(f.type, type) and issubclass(f.type, msgspec.Struct)
    }
    tables.update(SECTIONS)
    keys = []
    for name, table in tables.items():
        hints = typing.get_type_hints(table, include_extras=True)
        for field, hint in hints.items():
            base = _base(hint)
            if base in (int, float, Decimal):
                keys.append((f"{name}.{field}", base))
    return keys


def _base(hint: Any) -> Any:
    while typing.get_origin(hint) is typing.Annotated:
        hint = typing.get_args(hint)[0]
    if typing.get_origin(hint) in (typing.Union, type(int | None)):
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        return _base(options[0]) if len(options) == 1 else hint
    return hint


NUMERIC = _numeric_keys()
# Keys where 0 is a documented, meaningful value.
ZERO_ALLOWED = {
    "source.speed",
    "simulator.seed",
    "simulator.cascade_at_s",
    "run.process_id",
    "metrics.port",
    "book.every_ms",
    "book.ladder",  # 0: no ladder records
    "candles.lateness_ms",
    "candles.revise_s",  # 0: no corrections
}


def test_every_numeric_key_is_found() -> None:
    found = {key for key, _ in NUMERIC}
    assert {"run.workers", "source.seconds", "bursts.min_notional"} <= found
    assert len(found) >= 18


def _data(dotted: str, value: Any) -> dict[str, Any]:
    table, field = dotted.split(".")
    data: dict[str, Any] = dict(BASE)
    data[table] = {field: value}
    if table == "run" and field == "process_id":
        data["run"]["addresses"] = ["127.0.0.1:1", "127.0.0.1:2"]
    return data


@pytest.mark.parametrize(("key", "kind"), NUMERIC, ids=[k for k, _ in NUMERIC])
@pytest.mark.parametrize("bad", ["nan", "inf", "-inf", "-1", "1e30"])
def test_nan_inf_negative_and_huge_values_are_refused(
    key: str, kind: type, bad: str
) -> None:
    value: Any = (
        bad if kind is not int or bad in ("nan", "inf", "-inf") else int(float(bad))
    )
    with pytest.raises(ConfigError, match=re.escape(key)):
        settings_from_data(_data(key, value), "t.toml")


@pytest.mark.parametrize("key", [k for k, _ in NUMERIC if k not in ZERO_ALLOWED])
def test_zero_is_refused_where_it_cannot_work(key: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(key)):
        settings_from_data(_data(key, 0), "t.toml")


@pytest.mark.parametrize("key", sorted(ZERO_ALLOWED))
def test_zero_is_accepted_where_it_means_something(key: str) -> None:
    settings_from_data(_data(key, 0), "t.toml")


def test_a_flag_given_as_text_is_checked_the_same_way() -> None:
    with pytest.raises(ConfigError, match=r"source\.seconds: expected float > 0.0"):
        merge_overrides(Settings(), {**BASE, "source.seconds": "nan"})
    ok = merge_overrides(Settings(), {**BASE, "source.seconds": "2.5"})
    assert ok.source.seconds == 2.5


def test_errors_name_the_file_the_key_and_the_value() -> None:
    with pytest.raises(ConfigError) as caught:
        settings_from_data(_data("run.workers", 0), "market.toml")
    assert str(caught.value) == "market.toml: run.workers: expected int >= 1, got 0"


def test_a_value_of_the_wrong_type_is_named_once_as_run_md_shows() -> None:
    with pytest.raises(ConfigError) as caught:
        settings_from_data(_data("run.workers", "two"), "market.toml")
    assert str(caught.value) == "market.toml: run.workers: expected int, got two"


def test_the_intervals_to_choose_from_come_shortest_first_every_time() -> None:
    data = {**_data("run.workers", 1), "candles": {"intervals": ["7m"]}}
    with pytest.raises(ConfigError) as caught:
        validate(settings_from_data(data, "market.toml"))
    assert str(caught.value).endswith(
        "choose from 1s, 1m, 3m, 5m, 15m, 30m, 1h, 2h, 4h, 6h, 8h, 12h, 1d, 3d, 1w, "
        "1month"
    )


def test_misspelt_keys_get_a_suggestion() -> None:
    with pytest.raises(ConfigError, match="did you mean 'workers'"):
        settings_from_data({**BASE, "run": {"wokers": 2}})
    with pytest.raises(ConfigError, match="did you mean 'book'"):
        settings_from_data({**BASE, "bok": {}})


def test_a_perp_only_flow_refuses_spot_markets() -> None:
    for flow in ("derivatives", "liquidations"):
        with pytest.raises(ConfigError, match="SOL_USDC is not one"):
            settings_from_data({"flow": flow, "symbols": ["SOL_USDC"]})
        settings_from_data({"flow": flow, "symbols": ["SOL_USDC_PERP"]})


def test_a_sink_is_checked_by_its_spec(tmp_path: Path) -> None:
    parquet = {"sinks": [f"parquet:{tmp_path}"]}  # every flow's records have a table
    for flow in ("book", "candles", "account"):
        settings_from_data({"flow": flow, "symbols": ["X"], "outputs": parquet})
    with pytest.raises(ConfigError, match="parquet needs a directory"):
        settings_from_data({**BASE, "outputs": {"sinks": ["parquet:"]}})
    with pytest.raises(ConfigError, match="unknown sink 'nope'"):
        settings_from_data({**BASE, "outputs": {"sinks": ["nope:x"]}})


def test_cluster_addresses_must_be_host_port() -> None:
    run = {"process_id": 0, "addresses": ["127.0.0.1:1", "no-port"]}
    with pytest.raises(ConfigError, match="'no-port' is not host:port"):
        settings_from_data({**BASE, "run": run})


def test_a_replay_file_that_is_not_a_recording_is_refused(tmp_path: Path) -> None:
    notes = tmp_path / "notes.jsonl"
    notes.write_text('{"hello": 1}\n')
    broken = tmp_path / "broken.jsonl.gz"
    broken.write_bytes(b"not gzip at all")
    for path in (notes, broken):
        settings = settings_from_data(
            {"flow": "book", "source": {"kind": "replay", "replay": [str(path)]}}
        )
        with pytest.raises(ConfigError, match="not a bpx-flows recording"):
            validate(settings)
    good = settings_from_data(
        {"flow": "book", "source": {"kind": "replay", "replay": [str(SESSION)]}}
    )
    validate(good)


def test_outputs_and_recovery_dirs_that_cannot_be_created_are_refused(
    tmp_path: Path,
) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    for key, value in (
        ("outputs", {"file": str(a_file / "out.jsonl")}),
        ("outputs", {"alerts": str(tmp_path)}),
        ("run", {"recovery_dir": str(a_file / "state")}),
        ("source", {"record": str(a_file / "rec.jsonl")}),
        ("outputs", {"file": "/dev/null"}),  # truncated on resume: not a device
    ):
        settings = settings_from_data({**BASE, key: value})
        with pytest.raises(ConfigError, match=rf"{key}\."):
            validate(settings)
    fine = settings_from_data(
        {**BASE, "run": {"recovery_dir": str(tmp_path / "new" / "state")}}
    )
    validate(fine)


def test_ports_out_of_range_or_in_use_are_refused() -> None:
    with pytest.raises(ConfigError, match=r"metrics\.port"):
        settings_from_data({**BASE, "metrics": {"port": 70_000}})
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        settings = settings_from_data({**BASE, "metrics": {"port": port}})
        with pytest.raises(ConfigError, match=f"cannot serve on 127.0.0.1:{port}"):
            validate(settings)


def test_an_invalid_secret_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BPX_API_SECRET", "not base64 at all!")
    with pytest.raises(ConfigError, match="API secret is not valid"):
        validate(settings_from_data(dict(BASE)))


def test_settings_survive_the_trip_to_a_cluster_child() -> None:
    settings = settings_from_data(
        {**BASE, "book": {"every_ms": 250}, "bursts": {"min_notional": "500"}}
    )
    again = settings_from_data(settings_to_data(settings))
    assert again == settings


def test_the_flow_list_comes_from_the_registry() -> None:
    with pytest.raises(ConfigError, match=", ".join(FLOWS)):
        settings_from_data({"flow": "nope"})


def test_the_shipped_example_checks(tmp_path: Path) -> None:
    example = Path(__file__).resolve().parents[1] / "docs" / "examples" / "market.toml"
    load_settings(example)


def test_the_shipped_example_lists_every_key() -> None:
    """Each key of every table, set or commented out, under its table's header."""
    example = Path(__file__).resolve().parents[1] / "docs" / "examples" / "market.toml"
    tables: dict[str, set[str]] = {"": set()}
    table = ""
    for line in example.read_text().splitlines():
        found = re.match(r"^\[(\w+)\]", line)
        if found:
            table = found.group(1)
            tables[table] = set()
            continue
        key = re.match(r"^#? ?(\w+) = ", line)
        if key:
            tables[table].add(key.group(1))
    expected: dict[str, set[str]] = {"": set()}
    for field in msgspec.structs.fields(Settings):
        kind = field.type
        if isinstance(kind, type) and issubclass(kind, msgspec.Struct):
            expected[field.encode_name] = {
                f.encode_name for f in msgspec.structs.fields(kind)
            }
        elif field.encode_name != "sections":
            expected[""].add(field.encode_name)
    for section in SECTIONS.values():
        expected[section.NAME] = {
            f.encode_name for f in msgspec.structs.fields(section)
        }
    missing = {
        name: sorted(keys - tables.get(name, set()))
        for name, keys in expected.items()
        if keys - tables.get(name, set())
    }
    assert missing == {}


def test_a_candle_backfill_is_a_duration_of_at_most_a_week() -> None:
    candles = {"flow": "candles", "symbols": ["SOL_USDC"]}
    for bad in ("1 h", "1.5h", "h", "-1h", "01h", "1w"):
        with pytest.raises(ConfigError, match=r"candles\.backfill"):
            validate(merge_overrides(Settings(), {**candles, "candles.backfill": bad}))
    with pytest.raises(ConfigError, match=r"candles\.backfill: '8d' is more than 7"):
        validate(merge_overrides(Settings(), {**candles, "candles.backfill": "8d"}))
    ok = merge_overrides(Settings(), {**candles, "candles.backfill": "90m"})
    assert history_s(ok) == 5400.0
    assert history_s(merge_overrides(Settings(), candles)) == 0.0
    market = {"flow": "market", "symbols": ["SOL_USDC"], "candles.backfill": "2h"}
    assert history_s(merge_overrides(Settings(), market)) == 7200.0


def test_live_candles_wake_the_source_when_their_windows_close() -> None:
    for flow in ("candles", "market"):
        live = settings_from_data(
            {"flow": flow, "symbols": ["SOL_USDC"], "candles": {"lateness_ms": 300}}
        )
        wakes = wake_times(live)
        assert wakes is not None and wakes.period_us == 1_000_000  # 1s windows
        # The first close a window can have: its end plus the lateness.
        assert min(wakes.offsets_us) > 300_000 and max(wakes.offsets_us) < 400_000
    minutes = settings_from_data(
        {"flow": "candles", "symbols": ["X"], "candles": {"intervals": ["1m", "1h"]}}
    )
    assert getattr(wake_times(minutes), "period_us", None) == 60_000_000
    replay = {"kind": "replay", "replay": [str(SESSION)]}
    assert wake_times(settings_from_data({**BASE, "source": replay})) is None
    assert wake_times(settings_from_data({"flow": "book", "symbols": ["X"]})) is None
