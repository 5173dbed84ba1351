"""values.schema.json and the chart's own checks refuse bad values, naming the value."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest
import yaml

from helm_support import CHART, CI_VALUES, HelmFailed, merged_values

SCHEMA = json.loads((CHART / "values.schema.json").read_text())


def test_the_schema_is_a_valid_draft7_schema() -> None:
    jsonschema.Draft7Validator.check_schema(SCHEMA)


def test_default_values_and_every_ci_file_match_the_schema() -> None:
    jsonschema.validate(merged_values(None), SCHEMA)
    for path in CI_VALUES:
        jsonschema.validate(merged_values(path), SCHEMA)


def test_every_default_value_is_described_by_the_schema() -> None:
    """additionalProperties is false throughout, so a value added without its schema fails here first."""

    def walk(values: Any, schema: dict[str, Any], path: str) -> None:
        if not isinstance(values, dict) or "properties" not in schema:
            return
        for key, value in values.items():
            assert key in schema["properties"], f"{path}{key} is in values.yaml but not in values.schema.json"
            walk(value, schema["properties"][key], f"{path}{key}.")

    walk(yaml.safe_load((CHART / "values.yaml").read_text()), SCHEMA, "")


# Each case: --set arguments, and a fragment Helm's message must contain (it names the value).
REJECTED = {
    "unknown top-level key": (["replicas=2"], "replicas"),
    "unknown nested key": (["kafka.bootstrap=k:9092"], "bootstrap"),
    "negative metrics port": (["metrics.port=-1"], "metrics"),
    "privileged metrics port": (["metrics.port=80"], "metrics"),
    "negative service port": (["service.port=-1"], "service"),
    "port beyond 65535": (["service.port=70000"], "service"),
    "zero partitions": (["kafka.partitions=0"], "partitions"),
    "unknown security protocol": (["kafka.securityProtocol=SASL_TLS"], "securityProtocol"),
    "unknown SASL mechanism": (["kafka.sasl.mechanism=GSSAPI"], "mechanism"),
    "bootstrap without port": (["kafka.bootstrapServers=kafka"], "bootstrapServers"),
    "replicas as a string": (["replicaCount=three"], "replicaCount"),
    "writable root file system": (["securityContext.readOnlyRootFilesystem=false"], "readOnlyRootFilesystem"),
    "privilege escalation": (["securityContext.allowPrivilegeEscalation=true"], "allowPrivilegeEscalation"),
    "root pod": (["podSecurityContext.runAsNonRoot=false"], "runAsNonRoot"),
    "capabilities kept": (["securityContext.capabilities.drop={NET_RAW}"], "capabilities"),
    "capability added": (["securityContext.capabilities.add={NET_ADMIN}"], "capabilities"),
    "bad log level": (["collector.logLevel=LOUD"], "logLevel"),
    "bad alertmanager url": (["notify.alertmanagerUrl=alertmanager:9093"], "alertmanagerUrl"),
    "bad topic name": (["topics.events=events topic"], "events"),
    # cross-field checks the schema cannot express: the templates `fail`
    "replicas beyond partitions": (["replicaCount=7", "kafka.partitions=6"], "replicaCount (7) must not exceed kafka.partitions (6)"),
    "hpa ceiling beyond partitions": (["autoscaling.enabled=true", "autoscaling.maxReplicas=12"], "autoscaling.maxReplicas (12)"),
    "keda ceiling beyond partitions": (["keda.enabled=true", "keda.maxReplicaCount=7"], "keda.maxReplicaCount (7)"),
    "hpa and keda together": (["autoscaling.enabled=true", "keda.enabled=true"], "mutually exclusive"),
    "SASL without mechanism": (["kafka.securityProtocol=SASL_SSL", "kafka.sasl.username=u",
                                "kafka.sasl.existingSecret=s"], "kafka.sasl.mechanism is required"),
    "SASL without password secret": (["kafka.securityProtocol=SASL_SSL", "kafka.sasl.mechanism=PLAIN",
                                      "kafka.sasl.username=u"], "kafka.sasl.existingSecret is required"),
    "mechanism without SASL": (["kafka.sasl.mechanism=PLAIN"], "use SASL_SSL or SASL_PLAINTEXT"),
    "client cert without key": (["kafka.tls.existingSecret=t", "kafka.tls.certKey=tls.crt"], "go together"),
    "keda on SASL without auth": (["keda.enabled=true", "kafka.securityProtocol=SASL_SSL", "kafka.sasl.mechanism=PLAIN",
                                   "kafka.sasl.username=u", "kafka.sasl.existingSecret=s"], "keda.authenticationRef.name"),
}


@pytest.mark.parametrize("sets,fragment", REJECTED.values(), ids=REJECTED.keys())
def test_bad_values_are_refused(render: Any, sets: list[str], fragment: str) -> None:
    with pytest.raises(HelmFailed) as caught:
        render(None, *sets)
    assert fragment in str(caught.value), str(caught.value)


def test_the_boundary_values_are_accepted(render: Any) -> None:
    assert render(None, "replicaCount=6", "kafka.partitions=6").one("Deployment")["spec"]["replicas"] == 6
    assert render(None, "replicaCount=0").one("Deployment")["spec"]["replicas"] == 0
    assert render(None, "metrics.port=65535").config()["metrics"]["port"] == 65535
