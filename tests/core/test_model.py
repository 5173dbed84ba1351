"""Event, Key and the flat JSON form."""

import math

import pytest

from brownout import semconv as sc
from brownout.model import Decision, Event, InvalidEvent, Key

K = Key("openai", "eastus", "gpt-4o")


def flat(**extra):
    d = {"start": 1000.0, "duration": 2.0, sc.GEN_AI_PROVIDER_NAME: "openai", sc.CLOUD_REGION: "eastus",
         sc.GEN_AI_REQUEST_MODEL: "gpt-4o"}
    d.update(extra)
    return d


def test_key_round_trips_through_text_and_dict():
    assert Key.parse(str(K)) == K
    assert Key.from_dict(K.as_dict()) == K
    assert Key.parse("aws.bedrock/us-east-1/meta/llama3-70b").model == "meta/llama3-70b"


@pytest.mark.parametrize("text", ["", "a/b", "a//c", "/b/c"])
def test_key_parse_rejects_incomplete_keys(text):
    with pytest.raises(ValueError, match="provider/region/model"):
        Key.parse(text)


def test_flat_form_round_trips_every_field():
    ev = Event(K, 1000.0, 2.5, "chat", response_model="gpt-4o-2024-08-06", stream=True, ttft=0.31,
               input_tokens=120, output_tokens=300, finish_reasons=("stop",), error_type=None,
               status_code=200, server_address="api.openai.com", server_port=443, itl_p50=0.01,
               itl_p95=0.02, itl_max=0.2, deadline=5.0)
    assert Event.from_flat(ev.to_flat()) == ev


def test_legacy_attribute_names_are_mapped():
    ev = Event.from_flat({"start": 1.0, "duration": 1.0, "gen_ai.system": "az.ai.openai", sc.CLOUD_REGION: "swedencentral",
                          sc.GEN_AI_REQUEST_MODEL: "gpt-4o", "gen_ai.is_streaming": True,
                          "gen_ai.server.time_to_first_token": 0.5, "gen_ai.usage.completion_tokens": 7})
    assert ev.key.provider == "azure.ai.openai"
    assert (ev.stream, ev.ttft, ev.output_tokens) == (True, 0.5, 7)


@pytest.mark.parametrize("missing", [sc.GEN_AI_PROVIDER_NAME, sc.CLOUD_REGION, sc.GEN_AI_REQUEST_MODEL])
def test_missing_key_attribute_is_named(missing):
    d = flat()
    del d[missing]
    with pytest.raises(InvalidEvent) as exc:
        Event.from_flat(d)
    assert exc.value.reason == "missing_attribute" and missing in str(exc.value)


@pytest.mark.parametrize("field,value,reason", [
    ("duration", -1.0, "bad_duration"), ("duration", math.nan, "bad_duration"), ("duration", math.inf, "bad_duration"),
    ("start", "yesterday", "bad_timestamp"), (sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK, -0.1, "bad_value"),
    (sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK, "fast", "bad_value"), (sc.GEN_AI_USAGE_OUTPUT_TOKENS, 1.5, "bad_value"),
    (sc.GEN_AI_USAGE_OUTPUT_TOKENS, 10**12, "bad_value"), (sc.GEN_AI_REQUEST_STREAM, "maybe", "bad_value"),
    (sc.GEN_AI_RESPONSE_FINISH_REASONS, 3, "bad_value"), ("duration", 10**7, "bad_duration"),
])
def test_bad_values_are_rejected_with_a_reason(field, value, reason):
    with pytest.raises(InvalidEvent) as exc:
        Event.from_flat(flat(**{field: value}))
    assert exc.value.reason == reason


@pytest.mark.parametrize("field,value,expected", [
    (sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK, 0, 0.0),          # a JSON integer for a float field
    (sc.GEN_AI_USAGE_OUTPUT_TOKENS, 12.0, 12),                  # an integral float for an int field
    (sc.GEN_AI_REQUEST_STREAM, "true", True),
    (sc.ERROR_TYPE, 503, "503"),
    (sc.ERROR_TYPE, "<class 'openai.InternalServerError'>", "InternalServerError"),
    (sc.GEN_AI_RESPONSE_FINISH_REASONS, "stop", ("stop",)),
    (sc.GEN_AI_RESPONSE_FINISH_REASONS, ["stop", 1], ("stop", "1")),
])
def test_values_off_the_common_path_are_converted(field, value, expected):
    ev = Event.from_flat(flat(**{field: value}))
    got = ev.to_flat().get(field)
    assert (tuple(got) if isinstance(got, list) else got) == expected
    assert type(got if not isinstance(got, list) else tuple(got)) is type(expected)


def test_events_of_one_key_share_its_key_and_bad_names_are_never_remembered():
    a, b = Event.from_flat(flat()), Event.from_flat(flat(start=1001.0))
    assert a.key is b.key and a.key == K
    assert Event.from_flat(flat(**{sc.GEN_AI_PROVIDER_NAME: "az.ai.openai"})).key.provider == "azure.ai.openai"
    for _ in range(2):  # the second time too: a refused name is checked again, not looked up
        with pytest.raises(InvalidEvent, match="bad_value"):
            Event.from_flat(flat(**{sc.CLOUD_REGION: "east/us"}))
        with pytest.raises(InvalidEvent, match="missing_attribute"):
            Event.from_flat(flat(**{sc.GEN_AI_PROVIDER_NAME: ["openai"]}))


def test_non_object_is_rejected():
    with pytest.raises(InvalidEvent, match="not_an_object"):
        Event.from_flat([1, 2])


@pytest.mark.parametrize("etype,cls", [("429", "capacity"), ("500", "capacity"), ("503", "capacity"),
                                       ("529", "capacity"), ("timeout", "capacity"), ("400", "client"),
                                       ("401", "client"), ("404", "client"), ("422", "client"),
                                       ("ValueError", "other"), (None, None)])
def test_error_classes(etype, cls):
    assert Event(K, 1.0, 1.0, error_type=etype).error_class == cls


def test_output_tokens_per_second_excludes_time_to_first_token():
    assert Event(K, 0.0, 3.0, ttft=1.0, output_tokens=101).output_tokens_per_second == pytest.approx(50.5)
    assert Event(K, 0.0, 3.0, error_type="503", output_tokens=10).output_tokens_per_second is None


def test_decision_json_has_the_replay_contract_fields():
    d = Decision(12.5, "breaker", "error_breaker", K, "open", 0.41234567, None).to_json()
    assert set(d) >= {"time", "kind", "rule", "key", "state", "observed", "baseline"}
    assert d["key"] == {"provider": "openai", "region": "eastus", "model": "gpt-4o"}
    assert d["observed"] == 0.412346 and d["baseline"] is None
