"""Settings: defaults, then the file, then BROWNOUT_* env, then flags; errors name the field."""

import pytest

from brownout.collector.settings import SettingsError, load_settings


def write(tmp_path, text):
    p = tmp_path / "brownout.yaml"
    p.write_text(text)
    return str(p)


def test_defaults():
    s = load_settings(env={})
    assert s.kafka.bootstrap_servers == "localhost:9092"
    assert s.topics.events == "brownout.events" and s.metrics.port == 9464 and s.group_id == "brownout-collector"


def test_precedence_file_then_env_then_flags(tmp_path):
    path = write(tmp_path, "kafka:\n  bootstrap_servers: file:9092\n  partitions: 12\ngroup_id: from-file\n"
                           "metrics:\n  port: 9000\n")
    s = load_settings(path, env={"BROWNOUT_KAFKA_BOOTSTRAP_SERVERS": "env:9092", "BROWNOUT_GROUP_ID": "from-env"},
                      overrides={"kafka.bootstrap_servers": "flag:9092", "metrics.port": None})
    assert s.kafka.bootstrap_servers == "flag:9092"
    assert s.group_id == "from-env"
    assert s.kafka.partitions == 12 and s.metrics.port == 9000


def test_config_path_from_env(tmp_path):
    path = write(tmp_path, "group_id: g2\n")
    assert load_settings(env={"BROWNOUT_CONFIG": path}).group_id == "g2"


@pytest.mark.parametrize("text,message", [
    ("kafka:\n  bootstrap_server: x\n", "kafka.bootstrap_server"),
    ("metrics:\n  port: http\n", "metrics.port"),
    ("metrics:\n  port: 70000\n", "metrics.port"),
    ("kafka: 3\n", "kafka (from"),
    ("kafka:\n  security_protocol: TLS\n", "kafka.security_protocol"),
    ("kafka:\n  security_protocol: SASL_SSL\n", "kafka.sasl_mechanism"),
    ("- a\n- b\n", "mapping at the top level"),
    ("kafka: [\n", "not valid YAML"),
])
def test_bad_file_names_the_field(tmp_path, text, message):
    with pytest.raises(SettingsError, match=message.replace("(", r"\(")):
        load_settings(write(tmp_path, text), env={})


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(SettingsError, match="cannot read config file"):
        load_settings(str(tmp_path / "nope.yaml"), env={})


def test_secrets_come_from_env_or_files_and_are_not_printed(tmp_path):
    pw = tmp_path / "pw"
    pw.write_text("s3cret\n")
    s = load_settings(write(tmp_path, f"kafka:\n  security_protocol: SASL_SSL\n  sasl_mechanism: SCRAM-SHA-512\n"
                                      f"  sasl_username: svc\n  sasl_password_file: {pw}\n"), env={})
    ks = s.kafka_settings(env={})
    assert ks.sasl_password == "s3cret" and "s3cret" not in repr(ks)
    assert s.kafka_settings(env={"BROWNOUT_KAFKA_SASL_PASSWORD": "fromenv"}).sasl_password == "fromenv"


def test_passwords_are_not_settable_in_the_file(tmp_path):
    with pytest.raises(SettingsError, match="kafka.sasl_password .*unknown setting"):
        load_settings(write(tmp_path, "kafka:\n  sasl_password: x\n"), env={})


def test_region_settings_from_file_env_and_flags(tmp_path):
    path = write(tmp_path, "default_region: westeurope\nregions:\n  myres: swedencentral\n  llm.internal: eastus\n"
                           "topics:\n  keyed: brownout.keyed\n")
    s = load_settings(path, env={})
    assert s.default_region == "westeurope" and s.regions == {"myres": "swedencentral", "llm.internal": "eastus"}
    assert s.topics.keyed == "brownout.keyed"
    assert s.region_map()("myres.openai.azure.com") == "swedencentral"
    assert s.region_map()("api.openai.com") == "westeurope"
    env = {"BROWNOUT_DEFAULT_REGION": "", "BROWNOUT_REGIONS": "a.example=eastus, b.example=westus"}
    s = load_settings(path, env=env)
    assert s.default_region is None and s.regions == {"a.example": "eastus", "b.example": "westus"}
    assert s.region_map()("api.openai.com") is None  # no default: such spans are dead-lettered
    assert load_settings(env={}, overrides={"default_region": "eastus"}).default_region == "eastus"
    defaults = load_settings(env={})
    assert defaults.default_region == "global" and defaults.regions == {} and defaults.topics.keyed is None


@pytest.mark.parametrize("text,env,message", [
    ("regions: [a, b]\n", {}, "regions (from .*): expected a mapping"),
    ("regions:\n  myres: 3\n", {}, "regions (from .*): 'myres': 3 must map"),
    ("default_region: a/b\n", {}, "default_region: 'a/b' is not a region name"),
    ("regions:\n  myres: east/us\n", {}, "regions.myres: 'east/us' is not a region name"),
    ("", {"BROWNOUT_REGIONS": "myres"}, "regions (from BROWNOUT_REGIONS): expected name=value pairs"),
])
def test_bad_region_settings_name_the_field(tmp_path, text, env, message):
    with pytest.raises(SettingsError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_settings(write(tmp_path, text) if text else None, env=env)


def test_a_keyed_topic_is_created_like_the_events_topic():
    from brownout.collector.run import topic_specs

    specs = {s.name: s for s in topic_specs(load_settings(env={"BROWNOUT_TOPICS_KEYED": "brownout.keyed"}))}
    assert specs["brownout.keyed"].partitions == specs["brownout.events"].partitions
    assert specs["brownout.keyed"].config == specs["brownout.events"].config
    assert len(topic_specs(load_settings(env={}))) == 4


K8S = {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "POD_NAME": "brownout-0", "HOSTNAME": "host-0"}


@pytest.mark.parametrize("env,configured,want_id,want_session_ms", [
    ({}, None, None, 10000),                                          # not in Kubernetes: dynamic
    (K8S, None, "brownout-0", 30000),                                 # the pod name, a longer session
    ({**K8S, "POD_NAME": ""}, None, "host-0", 30000),                 # no downward API: the host name
    (K8S, "", None, 10000),                                           # "" turns it off
    ({}, "collector-a", "collector-a", 30000),                        # set by hand anywhere
])
def test_group_instance_id_comes_from_the_pod_name_in_kubernetes(env, configured, want_id, want_session_ms):
    overrides = {"kafka.group_instance_id": configured} if configured is not None else {}
    kafka = load_settings(env={}, overrides=overrides).kafka_settings({**env, "BROWNOUT_X": "1"})
    assert (kafka.group_instance_id, kafka.session_timeout_ms) == (want_id, want_session_ms)


def test_membership_settings_from_the_environment_reach_the_consumer():
    s = load_settings(env={"BROWNOUT_KAFKA_GROUP_INSTANCE_ID": "c-1", "BROWNOUT_KAFKA_SESSION_TIMEOUT": "45",
                           "BROWNOUT_KAFKA_LEAVE_GROUP_ON_STOP": "false"})
    kafka = s.kafka_settings({})
    assert (kafka.group_instance_id, kafka.session_timeout_ms, kafka.leave_group_on_stop) == ("c-1", 45000, False)
    from brownout.transport.kafka import _membership

    assert _membership(kafka) == {"group_instance_id": "c-1", "session_timeout_ms": 45000,
                                  "heartbeat_interval_ms": 3000}


@pytest.mark.parametrize("env,message", [
    ({"BROWNOUT_KAFKA_SESSION_TIMEOUT": "2"}, "kafka.session_timeout: 2.0 is not 6..1800 seconds"),
    ({"BROWNOUT_KAFKA_LEAVE_GROUP_ON_STOP": "maybe"}, "kafka.leave_group_on_stop (from BROWNOUT_KAFKA_LEAVE_GROUP_ON_STOP): "
                                                      "expected true or false, got 'maybe'"),
    ({"BROWNOUT_KAFKA_GROUP_INSTANCE_ID": "a\tb"}, "kafka.group_instance_id: 'a\\\\tb' is not a member id"),
])
def test_bad_membership_settings_name_the_field(env, message):
    with pytest.raises(SettingsError, match=message.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        load_settings(env=env)


def test_previous_signing_keys_come_by_id_from_files(tmp_path):
    old = tmp_path / "old.key"
    old.write_text("key-A\n")
    s = load_settings(write(tmp_path, f"signing:\n  key_id: b\n  previous_key_files: {{a: {old}}}\n"),
                      env={"BROWNOUT_SIGNING_KEY": "key-B"})
    assert s.signing_keys({"BROWNOUT_SIGNING_KEY": "key-B"}) == (b"key-B", "b", {"b": b"key-B", "a": b"key-A"})
    assert load_settings(env={}).signing_keys({}) == (None, None, {})


@pytest.mark.parametrize("case,message", [
    ("missing", r"signing.previous_key_files.a: cannot read .*missing.key: No such file"),
    ("empty", r"signing.previous_key_files.a: .*empty.key is empty"),
    ("no_current", r"signing.previous_key_files: set without a signing key"),
    ("same_id", r"signing.previous_key_files.b: the id of the signing key names another key"),
])
def test_bad_key_ring_names_the_key(tmp_path, case, message):
    (tmp_path / "empty.key").write_text("\n")
    (tmp_path / "a.key").write_text("key-A\n")
    files = {"missing": {"a": tmp_path / "missing.key"}, "empty": {"a": tmp_path / "empty.key"},
             "no_current": {"a": tmp_path / "a.key"}, "same_id": {"b": tmp_path / "a.key"}}[case]
    env = {} if case == "no_current" else {"BROWNOUT_SIGNING_KEY": "key-B", "BROWNOUT_SIGNING_KEY_ID": "b"}
    s = load_settings(env=env, overrides={"signing.previous_key_files": {k: str(v) for k, v in files.items()}})
    with pytest.raises(SettingsError, match=message):
        s.signing_keys(env)


@pytest.mark.parametrize("env,message", [
    ({"BROWNOUT_METRICS_OTLP_ENDPOINT": "otelcol:4318"}, "metrics.otlp_endpoint: 'otelcol:4318' is not an http(s) URL"),
    ({"BROWNOUT_METRICS_OTLP_INTERVAL": "0"}, "metrics.otlp_interval: 0.0 is not 0.1..3600 seconds"),
    ({"BROWNOUT_HEALTH_MAX_POLL_GAP": "0"}, "health.max_poll_gap: 0.0 must be positive"),
])
def test_bad_metrics_and_health_settings_name_the_field(env, message):
    with pytest.raises(SettingsError, match=message.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        load_settings(env=env)


def test_an_empty_otlp_endpoint_is_off():
    assert load_settings(env={"BROWNOUT_METRICS_OTLP_ENDPOINT": ""}).metrics.otlp_endpoint is None
