"""The endpoint mapping the hooks and the collector share: one host, one region, both sides."""

import pytest

from brownout.endpoints import RegionMap, host_region, provider_for_host
from brownout.hooks import _targets


@pytest.mark.parametrize("host,region", [
    ("bedrock-runtime.us-west-2.amazonaws.com", "us-west-2"),
    ("bedrock-runtime-fips.us-east-1.amazonaws.com", "us-east-1"),
    ("europe-west4-aiplatform.googleapis.com", "europe-west4"),
    ("eastus.api.cognitive.microsoft.com", "eastus"),
    ("myres.openai.azure.com", "swedencentral"),
    ("llm.internal", "westus"),
    ("api.openai.com", None),
])
def test_the_collector_and_the_hooks_read_the_same_region_from_a_host(host, region):
    regions = {"myres": "swedencentral", "llm.internal": "westus"}
    assert host_region(host, regions) == region
    _targets.settings.set(region="fallback", regions=regions)
    try:
        assert _targets.region_for_host(host) == (region or "fallback")
    finally:
        _targets.settings.set()
    assert RegionMap(regions, default="fallback")(host) == (region or "fallback")


def test_region_map_ignores_case_and_non_strings_and_may_have_no_default():
    m = RegionMap({"MyRes": "swedencentral"}, default=None)
    assert m("MYRES.openai.azure.com") == "swedencentral"
    assert m("api.openai.com") is None and m(None) is None and m(443) is None
    assert RegionMap(default="")("api.openai.com") is None  # an empty default is no default


def test_region_map_cache_stays_bounded():
    m = RegionMap(default="global")
    for i in range(RegionMap._MAX_CACHED + 10):
        assert m(f"h{i}.example") == "global"
    assert len(m._cache) <= RegionMap._MAX_CACHED


def test_provider_from_host():
    assert provider_for_host("x.openai.azure.com", "openai") == "azure.ai.openai"
    assert provider_for_host("bedrock-runtime.eu-west-1.amazonaws.com", "anthropic") == "aws.bedrock"
    assert provider_for_host("us-central1-aiplatform.googleapis.com", "") == "gcp.vertex_ai"
    assert provider_for_host("api.openai.com", "openai") == "openai"
