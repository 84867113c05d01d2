"""Strategies, request building and oracles of bastion.fuzz, without a target."""

from __future__ import annotations

import json

from hypothesis import given, settings

from bastion.fuzz.oracles import sink_events
from bastion.fuzz.shape import shape_from_inputs
from bastion.fuzz.strategies import MODE, OMIT, base_example, build_example_request, example_strategy, sweep_examples
from bastion.sensors import SensorEvent
from bastion.surface.model import EntryPoint, Input


def _ep() -> EntryPoint:
    return EntryPoint("POST", "/orders/{order_id}", inputs=[
        Input("path", "order_id", kind="integer", required=True),
        Input("query", "verbose", kind="boolean"),
        Input("json", "lines[].sku", source="ast"),
        Input("json", "lines[].qty", kind="integer"),
        Input("json", "note", source="ast"),
    ], consumes=["application/json"])


def test_shape_nests_json_fields_and_marks_guessed_types() -> None:
    shape = shape_from_inputs(_ep())
    by_key = {f.key: f for f in shape.fields}
    lines = by_key["json:lines"].node
    assert lines.kind == "array" and set(lines.item.children) == {"sku", "qty"}
    assert by_key["json:note"].node.typed is False and by_key["path:order_id"].required


def test_sweep_examples_change_one_thing_at_a_time() -> None:
    shape = shape_from_inputs(_ep())
    base, *rest = sweep_examples(shape)
    assert base == base_example(shape)
    for example in rest:
        assert sum(example[k] != base[k] if k in base else True for k in example) == 1
    assert any(e.get("json:lines") == [] for e in rest)
    assert any(e.get("json:note") is None for e in rest)
    assert any(e[MODE] == "invalid_json" for e in rest)


def test_requests_carry_nan_surrogates_and_omitted_fields() -> None:
    ep = _ep()
    shape = shape_from_inputs(ep)
    example = {**base_example(shape), "json:note": "\ud800", "json:lines": [{"qty": float("nan")}],
               "query:verbose": OMIT}
    spec = build_example_request(ep, shape, example)
    body = spec.content.decode()
    assert '"\\ud800"' in body and "NaN" in body and spec.path == "/orders/1"
    assert "verbose" not in spec.params
    assert json.loads(body)["note"] == "\ud800"


@settings(max_examples=30, database=None)
@given(example_strategy(shape_from_inputs(_ep())))
def test_every_generated_example_builds_a_request(example: dict) -> None:
    spec = build_example_request(_ep(), shape_from_inputs(_ep()), example)
    assert spec.method == "POST" and spec.path.startswith("/orders/")


def test_sink_events_need_sql_text_or_a_shell() -> None:
    events = [SensorEvent("subprocess", "ping -c 1 bst123"), SensorEvent("subprocess", "/bin/sh -c ping bst123"),
              SensorEvent("sql", "SELECT 1 WHERE a = 'bst123'"), SensorEvent("compile", "<unknown>: bst123")]
    assert [e.kind for e in sink_events(events)] == ["subprocess", "sql"]
