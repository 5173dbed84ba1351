"""The chart lints, renders with every ci/ values file, and every manifest is valid Kubernetes."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest

from helm_support import CHART, KUBE_VERSION, NAMESPACE, Rendered, merged_values

# The chart declares kubeVersion >=1.25; validate against that floor and the newest schemas.
SCHEMA_VERSIONS = ("1.25.0", KUBE_VERSION)
CRD_GROUPS = ("monitoring.coreos.com/", "keda.sh/")


def test_lint_strict(helm: str, ci_values: Path) -> None:
    done = subprocess.run([helm, "lint", "--strict", str(CHART), "-f", str(ci_values)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 chart(s) failed" in done.stdout


def test_every_manifest_validates_against_kubernetes_schemas(render: Any, ci_values: Path) -> None:
    rendered: Rendered = render(ci_values)
    checked = 0
    for doc in rendered.docs:
        if doc["apiVersion"].startswith(CRD_GROUPS):
            continue  # custom resources: structure checked in test_custom_resources_*
        for version in SCHEMA_VERSIONS:
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                pytest.fail(f"{doc['kind']}/{doc['metadata']['name']} against Kubernetes {version}: "
                            f"{exc.message} at {'/'.join(map(str, exc.path))}")
        checked += 1
    assert checked >= 5


def test_every_object_has_standard_labels_and_the_release_namespace(render: Any, ci_values: Path) -> None:
    for doc in render(ci_values).docs:
        labels = doc["metadata"]["labels"]
        for label in ("app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/version",
                      "app.kubernetes.io/managed-by", "helm.sh/chart"):
            assert label in labels, f"{doc['kind']}/{doc['metadata']['name']} lacks label {label}"
        expected = merged_values(ci_values)["grafanaDashboard"]["namespace"] if doc["metadata"]["name"].endswith(
            "-dashboard") else ""
        assert doc["metadata"]["namespace"] == (expected or NAMESPACE)


def test_pods_are_hardened(render: Any, ci_values: Path) -> None:
    rendered: Rendered = render(ci_values)
    for where, spec in rendered.pod_specs():
        pod = spec["securityContext"]
        assert pod["runAsNonRoot"] is True and pod["runAsUser"] == 10001, where
        assert pod["seccompProfile"] == {"type": "RuntimeDefault"}, where
        assert spec["automountServiceAccountToken"] is False, where
        volumes = {v["name"]: v for v in spec["volumes"]}
        for container in spec["containers"]:
            sc = container["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True, where
            assert sc["allowPrivilegeEscalation"] is False, where
            assert sc["capabilities"]["drop"] == ["ALL"] and "add" not in sc["capabilities"], where
            assert sc["seccompProfile"] == {"type": "RuntimeDefault"}, where
            mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
            assert "emptyDir" in volumes[mounts["/tmp"]], f"{where}: /tmp must be a writable emptyDir"
            outbox = rendered.config()["notify"]["outbox_dir"]
            writable = [p for p, name in mounts.items() if "emptyDir" in volumes[name]]
            assert any(outbox.startswith(p + "/") for p in writable), f"{where}: {outbox} is not on an emptyDir"
            assert container["resources"]["requests"] and container["resources"]["limits"]["memory"], where


def test_collector_probes_and_ports_match_the_config(render: Any, ci_values: Path) -> None:
    rendered: Rendered = render(ci_values)
    config = rendered.config()
    deployment = rendered.one("Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["metrics"] == config["metrics"]["port"]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    # /healthz fails on a hung poll loop: the gap covers a rebalance and a state restore (30 s each at most)
    assert config["health"]["max_poll_gap"] >= 60
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    service = rendered.one("Service")
    assert [p["targetPort"] for p in service["spec"]["ports"]] == ["metrics"]
    assert service["spec"]["selector"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["BROWNOUT_CONFIG"].endswith("/config.yaml")


def test_replicas_never_exceed_partitions(render: Any, ci_values: Path) -> None:
    rendered: Rendered = render(ci_values)
    partitions = rendered.config()["kafka"]["partitions"]
    assert partitions == merged_values(ci_values)["kafka"]["partitions"]
    deployment = rendered.one("Deployment")
    autoscalers = rendered.of_kind("HorizontalPodAutoscaler") + rendered.of_kind("ScaledObject")
    if autoscalers:
        assert "replicas" not in deployment["spec"], "the autoscaler owns the replica count"
        (scaler,) = autoscalers
        ceiling = scaler["spec"].get("maxReplicas", scaler["spec"].get("maxReplicaCount"))
        assert 1 <= ceiling <= partitions
        assert scaler["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    else:
        assert 1 <= deployment["spec"]["replicas"] <= partitions


def test_config_checksum_on_the_pod_template_follows_the_config_map(render: Any) -> None:
    plain = render(None)
    changed = render(None, "rules=rules: {}")
    sums = [r.one("Deployment")["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
            for r in (plain, changed)]
    assert sums[0] != sums[1], "changing the rules must roll the pods"
    assert render(None, "image.tag=other").one("Deployment")["spec"]["template"]["metadata"]["annotations"][
        "checksum/config"] == sums[0], "the checksum covers the config only"
    for r, checksum in zip((plain, changed), sums):
        assert re.fullmatch(r"[0-9a-f]{64}", checksum)
        hook_cm = next(d for d in r.of_kind("ConfigMap") if "helm.sh/hook" in d["metadata"].get("annotations", {}))
        assert hook_cm["data"] == r.collector_config_map()["data"], "the init-topics Job sees the collector's config"
        job = r.one("Job", "-init-topics")
        assert job["spec"]["template"]["metadata"]["annotations"]["checksum/config"] == checksum


def test_init_topics_job_is_a_pre_install_and_pre_upgrade_hook(render: Any, ci_values: Path) -> None:
    rendered: Rendered = render(ci_values)
    job = rendered.one("Job", "-init-topics")
    annotations = job["metadata"]["annotations"]
    assert set(annotations["helm.sh/hook"].split(",")) == {"pre-install", "pre-upgrade"}
    assert "before-hook-creation" in annotations["helm.sh/hook-delete-policy"]
    hook_cm = next(d for d in rendered.of_kind("ConfigMap") if "helm.sh/hook" in d["metadata"].get("annotations", {}))
    assert int(hook_cm["metadata"]["annotations"]["helm.sh/hook-weight"]) < int(annotations["helm.sh/hook-weight"])
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["args"] == ["kafka", "init-topics"]
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    volumes = {v["name"]: v for v in job["spec"]["template"]["spec"]["volumes"]}
    assert volumes["config"]["configMap"]["name"] == hook_cm["metadata"]["name"]


def test_init_topics_can_be_disabled_and_then_the_collector_creates_topics(render: Any) -> None:
    rendered = render(None, "initTopics.enabled=false")
    assert not rendered.of_kind("Job")
    (container,) = rendered.one("Deployment")["spec"]["template"]["spec"]["containers"]
    assert container["args"] == ["collect"]


def test_secrets_are_only_referenced_never_rendered(render: Any, ci_values: Path) -> None:
    rendered: Rendered = render(ci_values)
    assert not rendered.of_kind("Secret")
    values = merged_values(ci_values)
    kafka = {values["kafka"]["sasl"]["existingSecret"], values["kafka"]["tls"]["existingSecret"]} - {""}
    others = {values["notify"]["slack"]["existingSecret"], values["notify"]["pagerduty"]["existingSecret"],
              values["signing"]["existingSecret"]} - {""}
    for where, spec in rendered.pod_specs():
        used = {v["secret"]["secretName"] for v in spec["volumes"] if "secret" in v}
        # the init-topics Job gets the Kafka credentials only
        assert used == (kafka if where.startswith("Job/") else kafka | others), where
        (container,) = spec["containers"]
        mounted = [m["mountPath"] for m in container["volumeMounts"]]
        env = {e["name"]: e for e in container["env"]}
        assert all("secretKeyRef" not in e.get("valueFrom", {}) for e in env.values()), \
            "secrets are files, not env values"
        if values["kafka"]["sasl"]["existingSecret"]:
            path = env["BROWNOUT_KAFKA_SASL_PASSWORD_FILE"]["value"]
            assert any(path.startswith(m + "/") for m in mounted), where
    config = rendered.config()
    for file_setting in (config["kafka"]["ssl_cafile"], config["notify"]["slack_webhook_url_file"],
                         config["notify"]["pagerduty_routing_key_file"], config["signing"]["key_file"]):
        if file_setting:
            (container,) = rendered.one("Deployment")["spec"]["template"]["spec"]["containers"]
            assert any(file_setting.startswith(m["mountPath"] + "/") for m in container["volumeMounts"]), file_setting


def test_service_monitor_scrapes_the_metrics_port(render: Any, ci_values: Path) -> None:
    rendered: Rendered = render(ci_values)
    monitors = rendered.of_kind("ServiceMonitor")
    if not merged_values(ci_values)["serviceMonitor"]["enabled"]:
        assert not monitors
        return
    (monitor,) = monitors
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    service = rendered.one("Service")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert [e["port"] for e in monitor["spec"]["endpoints"]] == [p["name"] for p in service["spec"]["ports"]]
    assert monitor["spec"]["endpoints"][0]["path"] == "/metrics"
    assert monitor["spec"]["namespaceSelector"]["matchNames"] == [NAMESPACE]


def test_prometheus_rule_has_well_formed_alerts(render: Any, ci_values: Path) -> None:
    rendered: Rendered = render(ci_values)
    rules = rendered.of_kind("PrometheusRule")
    if not merged_values(ci_values)["prometheusRule"]["enabled"]:
        assert not rules
        return
    (rule,) = rules
    groups = rule["spec"]["groups"]
    alerts = [r for g in groups for r in g["rules"] if "alert" in r]
    records = [r for g in groups for r in g["rules"] if "record" in r]
    names = [r["alert"] for r in alerts]
    assert len(names) == len(set(names)) and names
    for r in alerts:
        assert set(r) <= {"alert", "expr", "for", "labels", "annotations", "keep_firing_for"}, r["alert"]
        assert "brownout_" in r["expr"] and r["labels"]["severity"] in {"info", "warning", "critical"}, r["alert"]
        assert r["annotations"]["summary"], r["alert"]
    for r in records:
        assert set(r) <= {"record", "expr", "labels"} and ":" in r["record"], r["record"]
    assert len(alerts) + len(records) == sum(len(g["rules"]) for g in groups)


def test_scaled_object_reads_the_collector_consumer_lag(render: Any, ci_values: Path) -> None:
    rendered: Rendered = render(ci_values)
    objects = rendered.of_kind("ScaledObject")
    values = merged_values(ci_values)
    if not values["keda"]["enabled"]:
        assert not objects
        return
    (scaled,) = objects
    assert scaled["apiVersion"] == "keda.sh/v1alpha1"
    assert not rendered.of_kind("HorizontalPodAutoscaler"), "KEDA owns the HPA"
    (trigger,) = scaled["spec"]["triggers"]
    config = rendered.config()
    assert trigger["type"] == "kafka"
    meta = trigger["metadata"]
    assert meta["bootstrapServers"] == config["kafka"]["bootstrap_servers"]
    assert meta["consumerGroup"] == config["group_id"]
    assert meta["topic"] == config["topics"]["events"]
    assert int(meta["lagThreshold"]) >= 1
    assert all(isinstance(v, str) for v in meta.values()), "KEDA trigger metadata values are strings"
    if config["kafka"]["security_protocol"].startswith("SASL_"):
        assert meta["sasl"] in {"plaintext", "scram_sha256", "scram_sha512"}
        assert trigger["authenticationRef"]["name"] == values["keda"]["authenticationRef"]["name"]
    if config["kafka"]["security_protocol"] in ("SSL", "SASL_SSL"):
        assert meta["tls"] == "enable"


def test_keda_sasl_mechanism_names(render: Any) -> None:
    base = ("keda.enabled=true", "kafka.securityProtocol=SASL_SSL", "kafka.sasl.username=u",
            "kafka.sasl.existingSecret=s", "keda.authenticationRef.name=auth")
    for mechanism, keda_name in (("PLAIN", "plaintext"), ("SCRAM-SHA-256", "scram_sha256"),
                                 ("SCRAM-SHA-512", "scram_sha512")):
        scaled = render(None, *base, f"kafka.sasl.mechanism={mechanism}").one("ScaledObject")
        assert scaled["spec"]["triggers"][0]["metadata"]["sasl"] == keda_name
