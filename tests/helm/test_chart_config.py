"""What the chart hands the collector is what the collector accepts: settings, rules, commands."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from helm_support import CHART, Rendered, merged_values

SASL_SSL = CHART / "ci" / "sasl-ssl-values.yaml"


def _write_config_map(rendered: Rendered, into: Path) -> dict[str, Path]:
    files = {}
    for name, text in rendered.collector_config_map()["data"].items():
        files[name] = into / name
        files[name].write_text(text)
    return files


def test_rendered_config_loads_with_the_collector_settings(render: Any, ci_values: Path, tmp_path: Path) -> None:
    settings_mod = pytest.importorskip("brownout.collector.settings")
    rendered: Rendered = render(ci_values)
    files = _write_config_map(rendered, tmp_path)
    settings = settings_mod.load_settings(str(files["config.yaml"]), env={})
    values = merged_values(ci_values)
    assert settings.kafka.bootstrap_servers == values["kafka"]["bootstrapServers"]
    assert settings.kafka.security_protocol == values["kafka"]["securityProtocol"]
    assert settings.kafka.partitions == values["kafka"]["partitions"]
    assert settings.kafka.replication_factor == values["kafka"]["replicationFactor"]
    assert settings.group_id == values["groupId"]
    assert settings.topics.dead_letter == values["topics"]["deadLetter"]
    assert settings.metrics.port == values["metrics"]["port"]
    assert (settings.rules_file is not None) == bool(values["rules"])
    assert settings.health.max_poll_gap == values["collector"]["maxPollGapSeconds"]
    assert settings.metrics.otlp_endpoint == (values["metrics"]["otlpEndpoint"] or None)
    assert settings.metrics.otlp_interval == values["metrics"]["otlpIntervalSeconds"]


def test_region_and_keyed_topic_values_reach_the_collector_settings(render: Any, tmp_path: Path) -> None:
    settings_mod = pytest.importorskip("brownout.collector.settings")
    load = settings_mod.load_settings
    defaults = load(str(_write_config_map(render(None), tmp_path)["config.yaml"]), env={})
    assert (defaults.default_region, defaults.regions, defaults.topics.keyed) == ("global", {}, None)
    rendered = render(None, "collector.defaultRegion=", "collector.regions.myres=swedencentral",
                      "collector.regions.llm\\.internal=eastus", "topics.keyed=brownout.keyed")
    settings = load(str(_write_config_map(rendered, tmp_path)["config.yaml"]), env={})
    assert settings.default_region is None and settings.topics.keyed == "brownout.keyed"
    assert settings.regions == {"myres": "swedencentral", "llm.internal": "eastus"}


def test_config_paths_point_inside_the_mounted_config_map(render: Any) -> None:
    rendered: Rendered = render(SASL_SSL)
    config = rendered.config()
    (container,) = rendered.one("Deployment")["spec"]["template"]["spec"]["containers"]
    mount = next(m["mountPath"] for m in container["volumeMounts"] if m["name"] == "config")
    env = {e["name"]: e.get("value") for e in container["env"]}
    data = rendered.collector_config_map()["data"]
    assert Path(env["BROWNOUT_CONFIG"]).parent == Path(mount) and Path(env["BROWNOUT_CONFIG"]).name in data
    assert Path(config["rules_file"]).parent == Path(mount) and Path(config["rules_file"]).name in data


def test_default_install_uses_the_built_in_rule_pack(render: Any) -> None:
    rendered = render(None)
    assert rendered.config()["rules_file"] is None
    assert set(rendered.collector_config_map()["data"]) == {"config.yaml"}


def test_rendered_rules_pass_brownout_rules_check(render: Any, tmp_path: Path) -> None:
    rules_mod = pytest.importorskip("brownout.rules")
    files = _write_config_map(render(SASL_SSL), tmp_path)
    from click.testing import CliRunner

    from brownout.cli import main

    if "rules" in main.commands:
        result = CliRunner().invoke(main, ["rules", "check", str(files["rules.yaml"])])
        assert result.exit_code == 0, result.output
    else:
        # `brownout rules check` is not registered yet: the same validation through the library.
        rules_mod.load_rules(str(files["rules.yaml"]))


def test_bad_rules_in_values_are_caught_by_the_same_check(render: Any, tmp_path: Path) -> None:
    rules_mod = pytest.importorskip("brownout.rules")
    files = _write_config_map(render(None, "rules=rules: {error_rate: {fire_rate: 2}}"), tmp_path)
    with pytest.raises(rules_mod.RuleError) as caught:
        rules_mod.load_rules(str(files["rules.yaml"]))
    assert "fire_rate" in str(caught.value)


def test_container_commands_are_ones_the_cli_accepts(render: Any, ci_values: Path) -> None:
    cli = pytest.importorskip("brownout.cli")
    from click.testing import CliRunner

    for where, spec in render(ci_values).pod_specs():
        for container in spec["containers"]:
            # --help is eager: exit 0 means every earlier argument parsed.
            result = CliRunner().invoke(cli.main, [*container["args"], "--help"])
            assert result.exit_code == 0, f"{where}: `brownout {' '.join(container['args'])}`: {result.output}"


def test_extra_env_reaches_the_collector_and_the_job(render: Any) -> None:
    rendered = render(None, "extraEnv[0].name=BROWNOUT_BATCH_SIZE", "extraEnv[0].value=500")
    for where, spec in rendered.pod_specs():
        env = {e["name"]: e.get("value") for e in spec["containers"][0]["env"]}
        assert env["BROWNOUT_BATCH_SIZE"] == "500", where


def test_static_membership_names_each_pod_and_can_be_turned_off(render: Any, tmp_path: Path) -> None:
    settings_mod = pytest.importorskip("brownout.collector.settings")
    rendered = render(None)
    (container,) = rendered.one("Deployment")["spec"]["template"]["spec"]["containers"]
    pod_name = next(e for e in container["env"] if e["name"] == "POD_NAME")
    assert pod_name["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    in_pod = {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "POD_NAME": "brownout-5f7c9-x2k4q", "HOSTNAME": "other"}
    static = settings_mod.load_settings(str(_write_config_map(rendered, tmp_path)["config.yaml"]), env={})
    kafka = static.kafka_settings(in_pod)
    assert (kafka.group_instance_id, kafka.session_timeout_ms) == ("brownout-5f7c9-x2k4q", 30000)
    off = render(None, "kafka.staticMembership=false", "kafka.sessionTimeoutSeconds=10")
    dynamic = settings_mod.load_settings(str(_write_config_map(off, tmp_path)["config.yaml"]), env={})
    kafka = dynamic.kafka_settings(in_pod)
    assert (kafka.group_instance_id, kafka.session_timeout_ms) == (None, 10000)


def test_previous_signing_keys_are_mounted_and_reach_the_key_ring(render: Any, tmp_path: Path) -> None:
    settings_mod = pytest.importorskip("brownout.collector.settings")
    rendered = render(None, "signing.existingSecret=brownout-signing", "signing.key=current",
                      "signing.previousKeys={old,older}")
    spec = rendered.one("Deployment")["spec"]["template"]["spec"]
    (volume,) = [v for v in spec["volumes"] if v["name"] == "signing"]
    assert volume["secret"]["items"] == [{"key": "current", "path": "key"}, {"key": "old", "path": "previous-old"},
                                         {"key": "older", "path": "previous-older"}]
    (mount,) = [m for m in spec["containers"][0]["volumeMounts"] if m["name"] == "signing"]
    # the Secret as the pod sees it, under the mount path
    root = tmp_path / "pod"
    secret_dir = root / mount["mountPath"].lstrip("/")
    secret_dir.mkdir(parents=True)
    for item, text in zip(volume["secret"]["items"], ("key-C", "key-B", "key-A"), strict=True):
        (secret_dir / item["path"]).write_text(text + "\n")
    config = rendered.config()
    config["signing"]["key_file"] = str(root / config["signing"]["key_file"].lstrip("/"))
    config["signing"]["previous_key_files"] = {k: str(root / v.lstrip("/"))
                                               for k, v in config["signing"]["previous_key_files"].items()}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    settings = settings_mod.load_settings(str(tmp_path / "config.yaml"), env={})
    key, _, ring = settings.signing_keys({})
    assert key == b"key-C" and list(ring.values()) == [b"key-C", b"key-B", b"key-A"]
    assert list(ring)[1:] == ["old", "older"]
    assert render(None).config()["signing"]["previous_key_files"] == {}
