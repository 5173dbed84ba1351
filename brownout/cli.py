"""The ``brownout`` command."""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from pathlib import Path
from typing import Any

import click

from brownout import __version__


def _setup_logging(level: str) -> None:
    logging.basicConfig(level=getattr(logging, level.upper(), logging.INFO),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="brownout")
def main() -> None:
    """brownout: see an LLM provider's brownout before your users do.

    Hooks in your app emit one OTel GenAI event per LLM request to Kafka; the collector
    keeps baselines per provider/region/model, alerts, and publishes circuit-breaker state
    that routers follow.
    """


@main.command()
@click.option("--speed", type=float, default=25.0, show_default=True,
              help="Simulated seconds per real second.")
@click.option("--seed", type=int, default=7, show_default=True, help="Traffic and jitter seed.")
@click.option("--rules", "rules_file", type=click.Path(exists=True, dir_okay=False), help="A rules file.")
@click.option("--plain", is_flag=True, help="Print lines instead of redrawing a table in place.")
@click.option("--report-dir", type=click.Path(file_okay=False), default="brownout-demo-report", show_default=True,
              help="Where the incident report goes at the end.")
@click.option("--no-report", is_flag=True, help="Do not write the incident report.")
@click.option("--status-port", type=int, default=None,
              help="Serve the live status page on this port during the demo (http://127.0.0.1:PORT/status).")
def demo(speed: float, seed: int, rules_file: str | None, plain: bool, report_dir: str, no_report: bool,
         status_port: int | None) -> None:
    """Run the whole pipeline in one process on simulated, real-calibrated traffic.

    No Kafka needed: the in-memory transport stands in for it. One key browns out at
    09:12; watch its alerts fire, its breaker open and, after the incident, close. At the
    end an incident report (HTML, and PNG charts when Chromium is installed) is written.
    """
    from brownout.demo import Timeline, run_demo, summarize, write_report
    from brownout.rules import load_rules

    if speed <= 0:
        raise click.BadParameter("must be positive", param_hint="--speed")
    rules = load_rules(rules_file)
    tl = Timeline()
    board = history = server = None
    if status_port is not None:
        from prometheus_client import CollectorRegistry

        from brownout.exporters.prometheus import MetricsServer, StatusBoard
        from brownout.status import HistoryRecorder, StatusPage

        board, history = StatusBoard(), HistoryRecorder(60)
        server = MetricsServer(CollectorRegistry(), host="127.0.0.1", port=status_port,
                               pages=StatusPage(board, history, rules=rules, refresh=5).handle)
        server.start()
        click.echo(f"status page: http://127.0.0.1:{server.port}/status")
    try:
        result = asyncio.run(run_demo(speed=speed, seed=seed, live=False if plain else None, timeline=tl,
                                      rules=rules, board=board, history=history))
    finally:
        if server is not None:
            server.stop()
    code = summarize(result, tl)
    if not no_report:
        write_report(result, report_dir, rules, seed=seed)
    sys.exit(code)


@main.command()
@click.option("--config", "config_file", type=click.Path(dir_okay=False), envvar="BROWNOUT_CONFIG",
              help="YAML settings file (see docs). Env: BROWNOUT_CONFIG.")
@click.option("--bootstrap-servers", help="Kafka bootstrap servers, host:port[,host:port].")
@click.option("--group-id", help="Consumer group of the collectors.")
@click.option("--rules", "rules_file", type=click.Path(dir_okay=False), help="Rules file (YAML).")
@click.option("--metrics-port", type=int, help="Port of /metrics, /healthz and /readyz.")
@click.option("--events-topic", help="Events topic.")
@click.option("--control-topic", help="Control topic.")
@click.option("--keyed-topic", help="Where records without a provider/region/model key (an OTel Collector's) "
              "are republished keyed; default: the events topic.")
@click.option("--default-region", help="Region of spans that name none and whose server.address maps to none "
              "(default 'global'; '' dead-letters them).")
@click.option("--create-topics/--no-create-topics", default=True, show_default=True,
              help="Create missing topics with their policies at start.")
def collect(config_file: str | None, bootstrap_servers: str | None, group_id: str | None,
            rules_file: str | None, metrics_port: int | None, events_topic: str | None,
            control_topic: str | None, keyed_topic: str | None, default_region: str | None,
            create_topics: bool) -> None:
    """Run the collector against Kafka.

    Settings come from defaults, then --config, then BROWNOUT_* environment variables
    (BROWNOUT_KAFKA_BOOTSTRAP_SERVERS, ...), then these flags.
    """
    from brownout.collector.run import run_collector
    from brownout.collector.settings import SettingsError, load_settings
    from brownout.rules import RuleError, load_rules

    try:
        settings = load_settings(config_file, overrides={
            "kafka.bootstrap_servers": bootstrap_servers, "group_id": group_id, "rules_file": rules_file,
            "metrics.port": metrics_port, "topics.events": events_topic, "topics.control": control_topic,
            "topics.keyed": keyed_topic, "default_region": default_region})
        rules = load_rules(settings.rules_file)
    except (SettingsError, RuleError) as exc:
        raise click.ClickException(str(exc)) from None
    _setup_logging(settings.log_level)
    causes = _KafkaCauses()
    logging.getLogger("aiokafka").addHandler(causes)
    try:
        asyncio.run(run_collector(settings, rules, create_topics=create_topics))
    except KeyboardInterrupt:
        pass
    except SettingsError as exc:  # secrets and key files are read at start, after the settings load
        raise click.ClickException(str(exc)) from None
    except Exception as exc:
        if not _is_kafka_failure(exc):
            raise
        k = settings.kafka
        where = f"Kafka at {k.bootstrap_servers} ({k.security_protocol}"
        where += f", {k.sasl_mechanism} as {k.sasl_username!r})" if k.sasl_mechanism else ")"
        raise click.ClickException(f"cannot use {where}: {causes.explain(exc)}") from None


class _KafkaCauses(logging.Handler):
    """Remembers why aiokafka failed: its exceptions only say "Unable to bootstrap"."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())

    def explain(self, exc: BaseException) -> str:
        seen = " ".join(self.messages)
        if "SaslAuthenticationFailed" in seen or "Authentication failed" in seen:
            return "SASL authentication failed (check the username and BROWNOUT_KAFKA_SASL_PASSWORD)"
        if "SSL" in seen and ("certificate" in seen or "CERTIFICATE" in seen):
            return f"TLS failed (check kafka.ssl_cafile): {exc}"
        return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _is_kafka_failure(exc: BaseException) -> bool:
    from brownout.transport.base import DeliveryError

    try:
        from aiokafka.errors import KafkaError
    except ImportError:  # pragma: no cover
        return isinstance(exc, DeliveryError)
    return isinstance(exc, (KafkaError, DeliveryError, TimeoutError, ConnectionError))


@main.command()
@click.argument("file", type=click.File("rb"))
@click.option("--rules", "rules_file", type=click.Path(exists=True, dir_okay=False), help="Rules file (YAML).")
@click.option("--seed", type=int, default=0, show_default=True, help="Breaker jitter seed.")
@click.option("--default-region", default="global", show_default=True,
              help="Region of events that name none and whose server.address tells none ('' : invalid).")
def replay(file: Any, rules_file: str | None, seed: int, default_region: str) -> None:
    """Replay events from FILE (flat JSON or OTLP JSON lines; - for stdin) and print decisions.

    Event time is the clock; the same file and rules always print the same lines.
    """
    from brownout.replay import replay as run_replay
    from brownout.rules import RuleError, load_rules

    _setup_logging("WARNING")
    try:
        rules = load_rules(rules_file)
    except RuleError as exc:
        raise click.ClickException(str(exc)) from None
    from brownout.endpoints import RegionMap

    stats = run_replay(file, sys.stdout, rules, seed=seed, regions=RegionMap(default=default_region or None))
    click.echo(f"replayed {stats.events} events: {stats.decisions} decisions, {stats.invalid} invalid, "
               f"{stats.skipped} skipped, {stats.out_of_order} out of order", err=True)


@main.command()
@click.argument("file", type=click.File("r"), required=False)
@click.option("--from", "since", help="Start of the range: unix seconds, ISO 8601 (2026-11-24T09:00:00Z) or now-2h.")
@click.option("--to", "until", default=None, help="End of the range (default: now, or the end of FILE).")
@click.option("--lead-in", type=float, default=3600.0, show_default=True,
              help="Seconds of events read before --from so baselines have warmed (Kafka only).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="brownout-report", show_default=True,
              help="Directory for the HTML reports, their PNG charts and index.html.")
@click.option("--rules", "rules_file", type=click.Path(exists=True, dir_okay=False), help="Rules file (YAML).")
@click.option("--png/--no-png", default=None, help="PNG charts through headless Chromium (default: when installed).")
@click.option("--config", "config_file", type=click.Path(dir_okay=False), envvar="BROWNOUT_CONFIG",
              help="Collector settings (Kafka connection, topic names) for reading the events topic.")
@click.option("--bootstrap-servers", help="Kafka bootstrap servers (reads the events topic when FILE is not given).")
@click.option("--events-topic", help="Events topic.")
def report(file: Any, since: str | None, until: str | None, lead_in: float, out_dir: str, rules_file: str | None,
           png: bool | None, config_file: str | None, bootstrap_servers: str | None, events_topic: str | None) -> None:
    """Write one HTML report (and PNG charts) per incident, from FILE or from the events topic.

    FILE is a replay file (flat or OTLP JSON lines; - for stdin). Without FILE, events between
    --from (minus --lead-in) and --to are read from Kafka by timestamp. Baselines and decisions
    come from running the detectors over the events, as `brownout replay` does.
    """
    from brownout.rules import RuleError, load_rules
    from brownout.status.report import parse_time, write_reports

    _setup_logging("WARNING")
    try:
        rules = load_rules(rules_file)
        t_from = parse_time(since) if since else None
        t_to = parse_time(until) if until else None
    except (RuleError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    if file is not None:
        from brownout.replay import ReplayStats, read_events

        stats = ReplayStats()
        events = list(read_events(file, stats))
        source = getattr(file, "name", "stdin")
        if stats.invalid:
            click.echo(f"skipped {stats.invalid} invalid line(s) of {source}", err=True)
    else:
        if t_from is None:
            raise click.UsageError("give a FILE, or --from (and --to) to read the events topic")
        from brownout.collector.settings import SettingsError, load_settings
        from brownout.status.source import read_topic_range

        try:
            settings = load_settings(config_file, overrides={"kafka.bootstrap_servers": bootstrap_servers,
                                                             "topics.events": events_topic})
        except SettingsError as exc:
            raise click.ClickException(str(exc)) from None
        end = t_to if t_to is not None else time.time()
        try:
            events, counts = asyncio.run(read_topic_range(settings.kafka_settings(), settings.topics.events,
                                                          t_from - lead_in, end))
        except Exception as exc:
            if not _is_kafka_failure(exc):
                raise
            raise click.ClickException(f"cannot read {settings.topics.events} from "
                                       f"{settings.kafka.bootstrap_servers}: {exc}") from None
        source = f"{settings.topics.events} {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(t_from))} to " \
                 f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(end))}"
        click.echo(f"read {counts['records']} records: {len(events)} events in range, "
                   f"{counts['invalid']} invalid", err=True)
    if not events:
        raise click.ClickException("no events to report on")
    written = write_reports(events, out_dir, rules, since=t_from, until=t_to, png=png, source=source)
    for w in written:
        click.echo(f"{w.html}" + (f" (+ {len(w.pngs)} PNG charts)" if w.pngs else ""))
    click.echo(f"{len(written)} incident(s); index: {Path(out_dir) / 'index.html'}", err=True)


@main.group()
def kafka() -> None:
    """Kafka administration."""


@kafka.command("init-topics")
@click.option("--config", "config_file", type=click.Path(dir_okay=False), envvar="BROWNOUT_CONFIG")
@click.option("--bootstrap-servers", help="Kafka bootstrap servers.")
@click.option("--partitions", type=int, help="Partitions of the events and state topics.")
def init_topics(config_file: str | None, bootstrap_servers: str | None, partitions: int | None) -> None:
    """Create the events, control (compacted), state (compacted) and dead-letter topics, and
    topics.keyed if it is set."""
    from brownout.collector.run import topic_specs
    from brownout.collector.settings import SettingsError, load_settings
    from brownout.transport import KafkaTransport

    try:
        s = load_settings(config_file, overrides={"kafka.bootstrap_servers": bootstrap_servers,
                                                  "kafka.partitions": partitions})
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None
    specs = topic_specs(s)
    created = asyncio.run(KafkaTransport(s.kafka_settings()).create_topics(specs))
    for spec in specs:
        state = "created" if spec.name in created else "exists"
        click.echo(f"{spec.name}: {state} (partitions={spec.partitions}, {spec.config.get('cleanup.policy')})")


def _kafka_from_settings(ctx: click.Context) -> Any:
    """Kafka settings for tools: BROWNOUT_CONFIG and BROWNOUT_KAFKA_* environment variables."""
    from brownout.collector.settings import SettingsError, load_settings
    from brownout.transport import KafkaTransport

    try:
        return KafkaTransport(load_settings().kafka_settings())
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None


def _register_groups() -> None:
    from brownout.breakers.cli import control_group
    from brownout.rules.cli import rules

    main.add_command(rules, "rules")
    main.add_command(control_group(_kafka_from_settings), "control")


_register_groups()

if __name__ == "__main__":  # pragma: no cover
    main()
