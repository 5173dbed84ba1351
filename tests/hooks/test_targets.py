"""Provider and region from a client's base URL, and the settings that name regions."""

from __future__ import annotations

import pytest

import brownout.hooks as hooks
from brownout.hooks._targets import Target, provider_for_host, settings, target_from_url


@pytest.fixture(autouse=True)
def _reset_settings():
    yield
    settings.set()


@pytest.mark.parametrize("url, default, provider, region", [
    ("https://api.openai.com/v1", "openai", "openai", "global"),
    ("https://api.anthropic.com", "anthropic", "anthropic", "global"),
    ("https://bedrock-runtime.us-east-1.amazonaws.com", "anthropic", "aws.bedrock", "us-east-1"),
    ("https://bedrock-runtime-fips.us-gov-west-1.amazonaws.com", "anthropic", "aws.bedrock", "us-gov-west-1"),
    ("https://europe-west4-aiplatform.googleapis.com/v1", "anthropic", "gcp.vertex_ai", "europe-west4"),
    ("https://eastus.api.cognitive.microsoft.com/", "openai", "azure.ai.openai", "eastus"),
    ("https://myres.openai.azure.com/openai/", "openai", "azure.ai.openai", "global"),
    ("https://myres.cognitiveservices.azure.com/", "openai", "azure.ai.openai", "global"),
])
def test_url_table(url, default, provider, region):
    t = target_from_url(url, default)
    assert (t.provider, t.region) == (provider, region)
    assert t.server_port == 443


def test_port_and_address():
    assert target_from_url("http://127.0.0.1:8080/v1", "openai") == Target("openai", "global", "127.0.0.1", 8080)


def test_region_order_explicit_then_mapping_then_url_then_default():
    url = "https://bedrock-runtime.us-east-1.amazonaws.com"
    settings.set(region="fallback", regions={"bedrock-runtime.us-east-1.amazonaws.com": "mapped"})
    assert target_from_url(url, "x", region="explicit").region == "explicit"
    assert target_from_url(url, "x").region == "mapped"
    settings.set(region="fallback")
    assert target_from_url(url, "x").region == "us-east-1"
    assert target_from_url("https://api.openai.com/v1", "openai").region == "fallback"


def test_azure_resource_mapping_is_case_insensitive():
    settings.set(regions={"MyRes": "swedencentral"})
    assert target_from_url("https://myres.openai.azure.com/", "openai").region == "swedencentral"


def test_provider_for_unknown_host_is_the_default():
    assert provider_for_host("llm.internal", "openai") == "openai"


@pytest.mark.parametrize("kwargs, field", [
    ({"region": ""}, "region"),
    ({"regions": {"myres": ""}}, "regions"),
    ({"regions": {"": "eastus"}}, "regions"),
])
def test_bad_region_settings_name_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        hooks.configure(**kwargs)


def test_bad_exporter_settings_name_the_field():
    with pytest.raises(ValueError, match="max_queue"):
        hooks.EventExporter(max_queue=0)
    with pytest.raises(ValueError, match="interval"):
        hooks.EventExporter(interval=0)


def test_public_surface_is_pinned():
    assert sorted(hooks.__all__) == sorted([
        "BrownoutLogger", "EventExporter", "Observation", "Target", "configure", "error_type_of", "event_of",
        "exporter", "flush", "instrument_anthropic", "instrument_bedrock", "instrument_genai", "instrument_openai",
        "observe", "shutdown", "stats", "uninstrument_anthropic", "uninstrument_bedrock", "uninstrument_genai",
        "uninstrument_openai"])
