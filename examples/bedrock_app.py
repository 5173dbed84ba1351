"""Instrument an Amazon Bedrock app (boto3 bedrock-runtime): converse, converse_stream,
invoke_model_with_response_stream.

    python examples/bedrock_app.py           # against a local fake server, events printed
"""

from __future__ import annotations

import json

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

import brownout.hooks
from brownout.hooks.testing import FakeLLMServer, Plan
from brownout.transport import MemoryTransport

from _events import print_events  # noqa: E402  (examples/_events.py)

MODEL = "anthropic.claude-3-5-sonnet-20240620-v1:0"


def main() -> None:
    server = FakeLLMServer()
    server.plan(Plan(), Plan(first_delay=0.1, chunks=6, gap=0.01), Plan(chunks=4), Plan(status=429))
    topic = MemoryTransport()
    brownout.hooks.configure(transport=topic)
    brownout.hooks.instrument_bedrock()          # every bedrock-runtime client; or instrument_bedrock(client)

    client = boto3.client("bedrock-runtime", region_name="us-west-2", endpoint_url=server.url,
                          aws_access_key_id="fake", aws_secret_access_key="fake",
                          config=Config(retries={"total_max_attempts": 1}))
    messages = [{"role": "user", "content": [{"text": "Say hello"}]}]
    client.converse(modelId=MODEL, messages=messages)
    for _ in client.converse_stream(modelId=MODEL, messages=messages)["stream"]:
        pass
    body = json.dumps({"anthropic_version": "bedrock-2023-05-31", "max_tokens": 64,
                       "messages": [{"role": "user", "content": "Say hello"}]})
    for _ in client.invoke_model_with_response_stream(modelId=MODEL, body=body)["body"]:
        pass
    try:
        client.converse(modelId=MODEL, messages=messages)
    except ClientError as exc:
        print("provider said", exc.response["Error"]["Code"])

    print_events(topic)
    client.close()
    server.close()


if __name__ == "__main__":
    main()
