"""Collector settings: defaults, then the config file, then ``BROWNOUT_*`` environment
variables, then command-line flags; validated at load with errors that name the field.

>>> s = load_settings(env={"BROWNOUT_KAFKA_BOOTSTRAP_SERVERS": "k1:9092", "BROWNOUT_METRICS_PORT": "9500"})
>>> s.kafka.bootstrap_servers, s.metrics.port, s.topics.control
('k1:9092', 9500, 'brownout.control')
>>> load_settings(env={"BROWNOUT_REGIONS": "myres=swedencentral,llm.internal=eastus"}).regions
{'myres': 'swedencentral', 'llm.internal': 'eastus'}
>>> load_settings(env={"BROWNOUT_METRICS_PORT": "http"})
Traceback (most recent call last):
...
brownout.collector.settings.SettingsError: metrics.port (from BROWNOUT_METRICS_PORT): expected an integer, got 'http'
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from brownout import semconv as sc


class SettingsError(ValueError):
    """A setting that cannot be used; the message names the field and where it came from."""


@dataclass
class KafkaSection:
    bootstrap_servers: str = "localhost:9092"
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password_file: str | None = None
    ssl_cafile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    partitions: int = 6
    replication_factor: int = 1
    retention_hours: int = 24
    # static group membership: a restarted member with the same id gets its partitions straight
    # back, without a rebalance. None: the pod name (POD_NAME, else HOSTNAME) when running in
    # Kubernetes, else none; "" turns it off
    group_instance_id: str | None = None
    # seconds before the group gives a silent member's partitions away (None: 30 with a
    # group_instance_id, so a restart fits in it; 10 without)
    session_timeout: float | None = None
    # a clean stop (SIGTERM) leaves the group, so a rolling update moves partitions at once;
    # false keeps a static member's partitions for its return (stable names: a StatefulSet)
    leave_group_on_stop: bool = True


@dataclass
class TopicsSection:
    events: str = sc.TOPIC_EVENTS
    control: str = sc.TOPIC_CONTROL
    state: str = sc.TOPIC_STATE
    dead_letter: str = sc.TOPIC_DEAD_LETTER
    # where records without a provider/region/model key are republished keyed (None: the events topic)
    keyed: str | None = None


@dataclass
class MetricsSection:
    host: str = "0.0.0.0"
    port: int = 9464
    max_keys: int = 2000
    # OTLP/HTTP metrics endpoint (http://otelcol:4318/v1/metrics) the per-key figures are also
    # pushed to, every otlp_interval seconds; None: Prometheus /metrics only
    otlp_endpoint: str | None = None
    otlp_interval: float = 15.0


@dataclass
class NotifySection:
    slack_webhook_url_file: str | None = None
    pagerduty_routing_key_file: str | None = None
    alertmanager_url: str | None = None
    webhook_url: str | None = None
    runbook_url: str | None = None
    outbox_dir: str | None = None
    public_url: str | None = None  # where people reach the status page: alerts link to the key's page


@dataclass
class StateSection:
    interval: float = 30.0  # seconds between snapshots of a key to the state topic
    max_per_poll: int = 200  # snapshots written per poll (spreads the periodic work)


@dataclass
class StatusSection:
    history_minutes: int = 240  # per-minute rows kept per key for /status (0 turns the page off)
    refresh: int = 15  # seconds between the page's own reloads


@dataclass
class HealthSection:
    # seconds without a completed poll before /healthz answers 503 (the liveness probe restarts
    # the pod): well above the poll timeout (0.5 s), a rebalance and the state restore after it
    max_poll_gap: float = 120.0


@dataclass
class SigningSection:
    key_file: str | None = None  # the key that signs (or env BROWNOUT_SIGNING_KEY)
    key_id: str | None = None  # its id in the brownout-key-id header (None: derived from the key)
    # keys still accepted when reading signed records back (snapshots, control records), by id:
    # a key rotation keeps the old key here, so saved baselines are restored instead of re-warmed
    previous_key_files: dict[str, str] = field(default_factory=dict)


@dataclass
class Settings:
    kafka: KafkaSection = field(default_factory=KafkaSection)
    topics: TopicsSection = field(default_factory=TopicsSection)
    metrics: MetricsSection = field(default_factory=MetricsSection)
    notify: NotifySection = field(default_factory=NotifySection)
    signing: SigningSection = field(default_factory=SigningSection)
    state: StateSection = field(default_factory=StateSection)
    status: StatusSection = field(default_factory=StatusSection)
    health: HealthSection = field(default_factory=HealthSection)
    group_id: str = "brownout-collector"
    rules_file: str | None = None
    batch_size: int = 2000
    log_level: str = "INFO"
    # spans that name no cloud.region (other instrumentations): server.address mapped by `regions`
    # (host or Azure resource name -> region) or read from the host name, else this (None: dead-letter)
    default_region: str | None = "global"
    regions: dict[str, str] = field(default_factory=dict)

    def region_map(self) -> Any:
        """The :class:`~brownout.endpoints.RegionMap` of ``regions`` and ``default_region``."""
        from brownout.endpoints import RegionMap

        return RegionMap(self.regions, default=self.default_region)

    # --- secrets: from the environment or files, never from flags or the config file ---
    def secret(self, env: Mapping[str, str], name: str, file_setting: str | None) -> str | None:
        """Read a secret from ``BROWNOUT_<NAME>``, ``BROWNOUT_<NAME>_FILE`` or the file setting."""
        value = env.get(f"BROWNOUT_{name}")
        if value:
            return value.strip()
        path = env.get(f"BROWNOUT_{name}_FILE") or file_setting
        if path:
            try:
                return Path(path).read_text().strip()
            except OSError as exc:
                raise SettingsError(f"cannot read the secret file for {name.lower()}: {exc}") from None
        return None

    def signing_keys(self, env: Mapping[str, str] | None = None) -> tuple[bytes | None, str | None, dict[str, bytes]]:
        """The signing key and its id, and every key accepted when verifying, by id (the signing
        key first, then ``signing.previous_key_files``); ``(None, None, {})`` without a key.

        >>> import pathlib, tempfile
        >>> old = pathlib.Path(tempfile.mkdtemp(), "old"); _ = old.write_text("key-A\\n")
        >>> s = load_settings(env={"BROWNOUT_SIGNING_KEY": "key-B", "BROWNOUT_SIGNING_KEY_ID": "b",
        ...                        "BROWNOUT_SIGNING_PREVIOUS_KEY_FILES": f"a={old}"})
        >>> s.signing_keys({"BROWNOUT_SIGNING_KEY": "key-B"})
        (b'key-B', 'b', {'b': b'key-B', 'a': b'key-A'})
        """
        env = os.environ if env is None else env
        sg = self.signing
        current = self.secret(env, "SIGNING_KEY", sg.key_file)
        if not current:
            if sg.previous_key_files:
                raise SettingsError("signing.previous_key_files: set without a signing key (signing.key_file "
                                    "or BROWNOUT_SIGNING_KEY)")
            return None, None, {}
        from brownout.breakers.record import default_key_id

        key = current.encode()
        key_id = sg.key_id or default_key_id(key)
        keys = {key_id: key}
        for kid, path in sg.previous_key_files.items():
            try:
                previous = Path(path).read_bytes().strip()
            except OSError as exc:
                raise SettingsError(f"signing.previous_key_files.{kid}: cannot read {path}: {exc.strerror}") from None
            if not previous:
                raise SettingsError(f"signing.previous_key_files.{kid}: {path} is empty")
            if kid in keys and keys[kid] != previous:
                raise SettingsError(f"signing.previous_key_files.{kid}: the id of the signing key names another key")
            keys.setdefault(kid, previous)
        return key, key_id, keys

    def group_instance_id(self, env: Mapping[str, str] | None = None) -> str | None:
        """The static group member id: ``kafka.group_instance_id``, else the pod name in Kubernetes.

        >>> s = Settings()
        >>> s.group_instance_id({"KUBERNETES_SERVICE_HOST": "10.0.0.1", "POD_NAME": "brownout-7d9f-x2k4q"})
        'brownout-7d9f-x2k4q'
        >>> s.group_instance_id({"HOSTNAME": "laptop"}) is None      # not in Kubernetes: dynamic membership
        True
        """
        env = os.environ if env is None else env
        configured = self.kafka.group_instance_id
        if configured is not None:
            return configured or None
        if env.get("KUBERNETES_SERVICE_HOST"):
            return env.get("POD_NAME") or env.get("HOSTNAME") or None
        return None

    def kafka_settings(self, env: Mapping[str, str] | None = None) -> Any:
        from brownout.transport.kafka import KafkaSettings

        env = os.environ if env is None else env
        k = self.kafka
        instance = self.group_instance_id(env)
        session = k.session_timeout if k.session_timeout is not None else (30.0 if instance else 10.0)
        return KafkaSettings(
            bootstrap_servers=k.bootstrap_servers, security_protocol=k.security_protocol,
            sasl_mechanism=k.sasl_mechanism, sasl_username=k.sasl_username,
            sasl_password=self.secret(env, "KAFKA_SASL_PASSWORD", k.sasl_password_file),
            ssl_cafile=k.ssl_cafile, ssl_certfile=k.ssl_certfile, ssl_keyfile=k.ssl_keyfile,
            client_id="brownout-collector", group_instance_id=instance,
            session_timeout_ms=int(session * 1000), leave_group_on_stop=k.leave_group_on_stop)


_SECTION_TYPES = {"kafka": KafkaSection, "topics": TopicsSection, "metrics": MetricsSection,
                  "notify": NotifySection, "signing": SigningSection, "state": StateSection,
                  "status": StatusSection, "health": HealthSection}
_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
_MECHANISMS = (None, "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


def _coerce(value: Any, default: Any, where: str, annotation: str) -> Any:
    if annotation.startswith("dict"):
        return _mapping(value, where)
    if value is None:
        if "None" in annotation:
            return None
        raise SettingsError(f"{where}: must not be empty")
    if annotation == "bool":
        return _boolean(value, where)
    if "int" in annotation:
        if isinstance(value, bool):
            raise SettingsError(f"{where}: expected an integer, got {value!r}")
        try:
            return int(value)
        except (TypeError, ValueError):
            raise SettingsError(f"{where}: expected an integer, got {value!r}") from None
    if "float" in annotation:
        try:
            return float(value)
        except (TypeError, ValueError):
            raise SettingsError(f"{where}: expected a number, got {value!r}") from None
    if isinstance(value, (dict, list)):
        raise SettingsError(f"{where}: expected a string, got {type(value).__name__}")
    return str(value)


def _boolean(value: Any, where: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "yes", "on", "1"):
        return True
    if text in ("false", "no", "off", "0"):
        return False
    raise SettingsError(f"{where}: expected true or false, got {value!r}")


def _mapping(value: Any, where: str) -> dict[str, str]:
    """A mapping of names to names, from YAML or from ``a=b,c=d`` (an environment variable)."""
    if value is None:
        return {}
    if isinstance(value, str):
        pairs = [p.partition("=") for p in value.split(",") if p.strip()]
        if any(not sep for _, sep, _ in pairs):
            raise SettingsError(f"{where}: expected name=value pairs separated by commas, got {value!r}")
        value = {k.strip(): v.strip() for k, _, v in pairs}
    if not isinstance(value, Mapping):
        raise SettingsError(f"{where}: expected a mapping, got {type(value).__name__}")
    out = {}
    for k, v in value.items():
        if not isinstance(k, str) or not k or not isinstance(v, str) or not v:
            raise SettingsError(f"{where}: {k!r}: {v!r} must map a non-empty name to a non-empty name")
        out[k] = v
    return out


def _apply(obj: Any, values: Mapping[str, Any], prefix: str, source: str) -> None:
    names = {f.name: f for f in dataclasses.fields(obj)}
    for name, value in values.items():
        where = f"{prefix}{name} (from {source})"
        if name not in names:
            raise SettingsError(f"{prefix}{name} (from {source}): unknown setting; valid: {', '.join(sorted(names))}")
        current = getattr(obj, name)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, Mapping):
                raise SettingsError(f"{where}: expected a mapping")
            _apply(current, value, f"{prefix}{name}.", source)
        else:
            setattr(obj, name, _coerce(value, current, where, str(names[name].type)))


def _from_env(env: Mapping[str, str]) -> list[tuple[str, dict[str, Any]]]:
    out: list[tuple[str, dict[str, Any]]] = []
    top = {f.name for f in dataclasses.fields(Settings)}
    for var, value in env.items():
        if not var.startswith("BROWNOUT_") or var == "BROWNOUT_CONFIG":
            continue
        rest = var[len("BROWNOUT_"):].lower()
        for section, typ in _SECTION_TYPES.items():
            if rest.startswith(section + "_"):
                name = rest[len(section) + 1:]
                if name in {f.name for f in dataclasses.fields(typ)}:
                    out.append((var, {section: {name: value}}))
                break
        else:
            if rest in top and rest not in _SECTION_TYPES:
                out.append((var, {rest: value}))
    return out


def load_settings(path: str | None = None, env: Mapping[str, str] | None = None,
                  overrides: Mapping[str, Any] | None = None) -> Settings:
    """Defaults, then the YAML file (``path`` or ``BROWNOUT_CONFIG``), then env, then overrides.

    ``overrides`` uses dotted names (``{"kafka.bootstrap_servers": "h:9092"}``); None values are ignored.
    """
    env = os.environ if env is None else env
    s = Settings()
    path = path or env.get("BROWNOUT_CONFIG")
    if path:
        import yaml

        try:
            data = yaml.safe_load(Path(path).read_text()) or {}
        except OSError as exc:
            raise SettingsError(f"cannot read config file {path}: {exc}") from None
        except yaml.YAMLError as exc:
            raise SettingsError(f"config file {path} is not valid YAML: {exc}") from None
        if not isinstance(data, Mapping):
            raise SettingsError(f"config file {path}: expected a mapping at the top level")
        _apply(s, data, "", path)
    for var, values in _from_env(env):
        _apply(s, values, "", var)
    for dotted, value in (overrides or {}).items():
        if value is None:
            continue
        head, _, tail = dotted.partition(".")
        _apply(s, {head: {tail: value}} if tail else {head: value}, "", "command line")
    _validate(s)
    return s


def _validate(s: Settings) -> None:
    if s.kafka.security_protocol not in _PROTOCOLS:
        raise SettingsError(f"kafka.security_protocol: {s.kafka.security_protocol!r} is not one of {', '.join(_PROTOCOLS)}")
    if s.kafka.sasl_mechanism not in _MECHANISMS:
        raise SettingsError(f"kafka.sasl_mechanism: {s.kafka.sasl_mechanism!r} is not one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512")
    if "SASL" in s.kafka.security_protocol and not s.kafka.sasl_mechanism:
        raise SettingsError("kafka.sasl_mechanism: required when kafka.security_protocol is SASL_*")
    if not 0 < s.metrics.port < 65536:
        raise SettingsError(f"metrics.port: {s.metrics.port} is not a TCP port")
    if s.kafka.session_timeout is not None and not 6 <= s.kafka.session_timeout <= 1800:
        raise SettingsError(f"kafka.session_timeout: {s.kafka.session_timeout} is not 6..1800 seconds "
                            "(the broker's group.min/max.session.timeout.ms by default)")
    if s.kafka.group_instance_id and (len(s.kafka.group_instance_id) > 249
                                      or not s.kafka.group_instance_id.isprintable()):
        raise SettingsError(f"kafka.group_instance_id: {s.kafka.group_instance_id[:80]!r} is not a member id "
                            "(printable, at most 249 characters)")
    if s.kafka.partitions < 1:
        raise SettingsError("kafka.partitions: must be at least 1")
    if s.state.interval <= 0:
        raise SettingsError("state.interval: must be positive")
    if s.state.max_per_poll < 1:
        raise SettingsError("state.max_per_poll: must be at least 1")
    if not s.health.max_poll_gap > 0:
        raise SettingsError(f"health.max_poll_gap: {s.health.max_poll_gap} must be positive (seconds)")
    if s.batch_size < 1:
        raise SettingsError("batch_size: must be at least 1")
    if s.status.history_minutes != 0 and not 2 <= s.status.history_minutes <= 7 * 24 * 60:
        raise SettingsError(f"status.history_minutes: {s.status.history_minutes} is not 0 (off) or 2..10080")
    if s.status.refresh < 0:
        raise SettingsError("status.refresh: must be >= 0 seconds (0: no reload)")
    if s.metrics.otlp_endpoint == "":
        s.metrics.otlp_endpoint = None
    if s.metrics.otlp_endpoint is not None and not s.metrics.otlp_endpoint.startswith(("http://", "https://")):
        raise SettingsError(f"metrics.otlp_endpoint: {s.metrics.otlp_endpoint!r} is not an http(s) URL "
                            "(OTLP/HTTP, e.g. http://otelcol:4318/v1/metrics)")
    if not 0.1 <= s.metrics.otlp_interval <= 3600:
        raise SettingsError(f"metrics.otlp_interval: {s.metrics.otlp_interval} is not 0.1..3600 seconds")
    if s.notify.public_url is not None and not s.notify.public_url.startswith(("http://", "https://")):
        raise SettingsError(f"notify.public_url: {s.notify.public_url!r} is not an http(s) URL")
    if s.default_region == "":
        s.default_region = None  # BROWNOUT_DEFAULT_REGION= (empty) turns the default off
    for where, region in [("default_region", s.default_region), *((f"regions.{k}", v) for k, v in s.regions.items())]:
        if region is not None and (len(region) > 256 or "/" in region or not region.isprintable()):
            raise SettingsError(f"{where}: {region[:80]!r} is not a region name (printable, no '/', at most 256)")
    if s.topics.keyed == "":
        s.topics.keyed = None
