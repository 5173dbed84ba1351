"""The real boto3 bedrock-runtime client against the local server (JSON and AWS event streams)."""

from __future__ import annotations

import gc
import json

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, EventStreamError, ReadTimeoutError

from brownout.hooks import instrument_bedrock, uninstrument_bedrock
from brownout.hooks.testing import Plan
from brownout.model import Key

MODEL = "anthropic.claude-3-5-sonnet-20240620-v1:0"
MESSAGES = [{"role": "user", "content": [{"text": "hello"}]}]
BODY = json.dumps({"anthropic_version": "bedrock-2023-05-31", "max_tokens": 64,
                   "messages": [{"role": "user", "content": "hello"}]})


def _client(server, region="us-east-1", **config):
    return boto3.client("bedrock-runtime", region_name=region, endpoint_url=server.url,
                        aws_access_key_id="test", aws_secret_access_key="test",
                        config=Config(retries={"total_max_attempts": 1}, **config))


@pytest.fixture
def client(server):
    c = _client(server)
    instrument_bedrock(c)
    yield c
    uninstrument_bedrock(c)
    c.close()


def test_converse(captured, client, server):
    out = client.converse(modelId=MODEL, messages=MESSAGES)
    assert out["output"]["message"]["content"] == [{"text": "hi"}]
    ev = captured.one()
    assert ev.key == Key("aws.bedrock", "us-east-1", MODEL)
    assert ev.stream is False and ev.ttft is None and ev.operation == "chat"
    assert (ev.input_tokens, ev.output_tokens) == (11, 3) and ev.finish_reasons == ("end_turn",)
    assert ev.server_address == "127.0.0.1" and ev.server_port == server.port
    assert server.requests[-1][0] == "/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse"


def test_converse_stream(captured, client, server):
    server.plan(Plan(chunks=5, first_delay=0.05))
    events = list(client.converse_stream(modelId=MODEL, messages=MESSAGES)["stream"])
    assert [next(iter(e)) for e in events] == ["messageStart"] + ["contentBlockDelta"] * 5 + [
        "contentBlockStop", "messageStop", "metadata"]
    ev = captured.one()
    assert ev.stream is True and ev.ttft >= 0.05 and ev.duration >= ev.ttft
    assert (ev.input_tokens, ev.output_tokens) == (11, 5) and ev.finish_reasons == ("end_turn",)
    assert 0 <= ev.itl_p50 <= ev.itl_p95 <= ev.itl_max


def test_invoke_model_reads_tokens_from_headers_and_leaves_the_body(captured, client, server):
    out = client.invoke_model(modelId=MODEL, body=BODY)
    assert json.loads(out["body"].read())["content"] == [{"type": "text", "text": "hi"}]
    ev = captured.one()
    assert ev.stream is False and (ev.input_tokens, ev.output_tokens) == (11, 3)


def test_invoke_model_with_response_stream(captured, client, server):
    server.plan(Plan(chunks=4, first_delay=0.05))
    chunks = [json.loads(e["chunk"]["bytes"]) for e in
              client.invoke_model_with_response_stream(modelId=MODEL, body=BODY)["body"]]
    assert [c["type"] for c in chunks].count("content_block_delta") == 4
    ev = captured.one()
    assert ev.stream is True and ev.ttft >= 0.05  # the first delta, not message_start
    assert (ev.input_tokens, ev.output_tokens) == (11, 4)
    assert ev.finish_reasons == ("end_turn",) and ev.response_model == MODEL


@pytest.mark.parametrize("status, code, error_type", [
    (429, "ThrottlingException", "429"), (503, "ServiceUnavailableException", "503"),
    (500, "InternalServerException", "500"), (408, "ModelTimeoutException", "timeout"),
    (400, "ValidationException", "400"),
])
def test_status_errors(captured, client, server, status, code, error_type):
    server.plan(Plan(status=status))
    with pytest.raises(ClientError) as info:
        client.converse(modelId=MODEL, messages=MESSAGES)
    assert info.value.response["Error"]["Code"] == code
    ev = captured.one()
    assert ev.error_type == error_type
    assert ev.status_code == (None if error_type == "timeout" else status)


def test_status_error_on_a_stream_request(captured, client, server):
    server.plan(Plan(status=429))
    with pytest.raises(ClientError):
        client.converse_stream(modelId=MODEL, messages=MESSAGES)
    ev = captured.one()
    assert ev.error_type == "429" and ev.stream is True


@pytest.mark.parametrize("exception, error_type", [("throttlingException", "429"),
                                                    ("modelStreamErrorException", "424"),
                                                    ("serviceUnavailableException", "503")])
def test_error_event_inside_the_stream(captured, client, server, exception, error_type):
    server.plan(Plan(chunks=6, cut_after=2, stream_error=exception))
    out = client.converse_stream(modelId=MODEL, messages=MESSAGES)
    with pytest.raises(EventStreamError):
        for _ in out["stream"]:
            pass
    out["stream"].close()
    ev = captured.one()
    assert ev.error_type == error_type and ev.finish_reasons == ("error",) and ev.ttft is not None


def test_read_timeout_before_the_first_token(captured, server):
    c = _client(server, read_timeout=0.1)
    instrument_bedrock(c)
    server.plan(Plan(delay=0.5))
    with pytest.raises(ReadTimeoutError):
        c.converse(modelId=MODEL, messages=MESSAGES)
    ev = captured.one()
    assert ev.error_type == "timeout" and ev.ttft_at_least == pytest.approx(ev.duration, abs=1e-6)
    c.close()


def test_stream_closed_before_its_first_chunk_is_cancelled(captured, client, server):
    out = client.converse_stream(modelId=MODEL, messages=MESSAGES)
    stream = iter(out["stream"])
    next(stream)  # messageStart: no content yet
    out["stream"].close()
    del stream
    gc.collect()
    ev = captured.one()
    assert ev.error_type == "cancelled" and ev.ttft is None and ev.ttft_at_least == pytest.approx(ev.duration, abs=1e-6)


def test_stream_closed_after_its_first_chunk_is_no_error(captured, client, server):
    server.plan(Plan(chunks=6))
    out = client.converse_stream(modelId=MODEL, messages=MESSAGES)
    for e in out["stream"]:
        if "contentBlockDelta" in e:
            break
    out["stream"].close()
    ev = captured.one()
    assert ev.error_type is None and ev.ttft is not None


def test_every_client_region_and_idempotence(captured, server):
    before = _client(server, region="eu-west-3")
    try:
        instrument_bedrock()
        instrument_bedrock()
        instrument_bedrock(before, region="eu-west-3")  # on top of the SDK: still one event per call
        after = _client(server, region="ap-south-1")
        before.converse(modelId=MODEL, messages=MESSAGES)
        after.converse(modelId="amazon.nova-pro-v1:0", messages=MESSAGES)
        assert [e.key for e in captured.events()] == [Key("aws.bedrock", "eu-west-3", MODEL),
                                                      Key("aws.bedrock", "ap-south-1", "amazon.nova-pro-v1:0")]
        uninstrument_bedrock(before)
        uninstrument_bedrock()
        uninstrument_bedrock()
        before.converse(modelId=MODEL, messages=MESSAGES)
        assert len(captured.events()) == 2
    finally:
        uninstrument_bedrock()
        before.close()


def test_only_bedrock_runtime_clients():
    s3 = boto3.client("s3", region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test")
    with pytest.raises(ValueError, match="bedrock-runtime"):
        instrument_bedrock(s3)
    s3.close()
