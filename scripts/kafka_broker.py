#!/usr/bin/env python3
"""A real single-node Kafka (KRaft, broker and controller in one JVM) for tests and local dev.

The broker jars come from Maven Central through Maven and are cached outside git
(``~/.cache/brownout/kafka-4.1.1``, or ``$BROWNOUT_KAFKA_CACHE``). Each broker gets a fresh
temp dir, formatted storage and free loopback ports; ``stop()`` removes it all.
Stdlib only, so the test fixture can import it before anything is installed.

    python scripts/kafka_broker.py fetch          # download the jars (idempotent)
    python scripts/kafka_broker.py run [--port N]  # print the bootstrap address, serve until Ctrl-C
    python scripts/kafka_broker.py run --sasl-ssl --user NAME=PASSWORD   # TLS + SCRAM-SHA-512

``KafkaBroker(sasl_ssl=True, scram_users={...})`` serves clients on a SASL_SSL listener only:
a throwaway CA and broker certificate made with ``openssl`` (``broker.ca_file`` is what clients
trust) and SCRAM-SHA-512 users created when the storage is formatted. ``halt()`` and ``resume()``
stop and start the same broker on the same ports and log dir (a broker restart).

>>> with KafkaBroker() as broker:                  # doctest: +SKIP
...     broker.bootstrap_servers
'127.0.0.1:40123'
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import fcntl
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import textwrap
import tempfile
import time
import uuid
from pathlib import Path
from types import TracebackType

KAFKA_VERSION = "4.1.1"
SCALA_VERSION = "2.13"
LOG4J_VERSION = "2.25.3"
# kafka-clients pins slf4j-api 1.7 for old users; the log4j binding needs 2.x or the broker logs nothing.
SLF4J_VERSION = "2.0.17"
BROKER_JAR = f"kafka_{SCALA_VERSION}-{KAFKA_VERSION}.jar"
JVM_OPTS = ("-Xmx512m", "-Xms64m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
            "-Djava.awt.headless=true")

POM = f"""<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>dev.brownout</groupId><artifactId>kafka-broker-jars</artifactId><version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_{SCALA_VERSION}</artifactId>
      <version>{KAFKA_VERSION}</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j2-impl</artifactId>
      <version>{LOG4J_VERSION}</version></dependency>
    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-api</artifactId>
      <version>{SLF4J_VERSION}</version></dependency>
  </dependencies>
</project>
"""

LOG4J2 = """status = warn
appender.out.type = Console
appender.out.name = OUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = OUT
logger.state.name = state.change.logger
logger.state.level = WARN
"""


class BrokerError(RuntimeError):
    """The jars could not be fetched or the broker did not come up; the message has the log tail."""


def cache_dir() -> Path:
    """Where the jars live: ``$BROWNOUT_KAFKA_CACHE`` or ``~/.cache/brownout/kafka-<version>``."""
    env = os.environ.get("BROWNOUT_KAFKA_CACHE")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "brownout" / f"kafka-{KAFKA_VERSION}"


def _libs_complete(libs: Path) -> bool:
    return (libs / ".complete").exists() and (libs / BROKER_JAR).exists()


def fetch(cache: Path | None = None, quiet: bool = True) -> Path:
    """Download the broker jars with Maven unless cached; return the ``libs`` directory.

    Safe to run concurrently (a file lock) and idempotent (a marker file once complete).
    """
    cache = cache or cache_dir()
    libs = cache / "libs"
    if _libs_complete(libs):
        return libs
    mvn = shutil.which("mvn")
    if mvn is None:
        raise BrokerError("Maven (mvn) is not on PATH; install it (apt-get install maven) to fetch "
                          f"Kafka {KAFKA_VERSION}, or set KAFKA_BOOTSTRAP_SERVERS to use a running broker")
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _libs_complete(libs):
            return libs
        (cache / "pom.xml").write_text(POM)
        staging = cache / "libs.partial"
        shutil.rmtree(staging, ignore_errors=True)
        cmd = [mvn, "-B", "-f", str(cache / "pom.xml"), "dependency:copy-dependencies",
               f"-DoutputDirectory={staging}", "-DincludeScope=runtime"]
        if quiet:
            cmd.insert(1, "-q")
        proc = subprocess.run(cmd, capture_output=quiet, text=True)
        if proc.returncode != 0:
            tail = "\n".join(((proc.stdout or "") + (proc.stderr or "")).splitlines()[-40:])
            raise BrokerError(f"mvn failed fetching Kafka {KAFKA_VERSION} (exit {proc.returncode}):\n{tail}")
        if not (staging / BROKER_JAR).exists():
            raise BrokerError(f"mvn finished but {BROKER_JAR} is missing from {staging}")
        shutil.rmtree(libs, ignore_errors=True)
        staging.rename(libs)
        (libs / ".complete").write_text(KAFKA_VERSION + "\n")
    return libs


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on right now (the broker binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _cluster_id() -> str:
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("broker closed the connection")
        buf += chunk
    return buf


def metadata_brokers(host: str, port: int, timeout: float = 2.0) -> list[tuple[int, str, int]]:
    """Send a Metadata (v4) request and return the brokers it lists as ``(node_id, host, port)``."""
    client = b"brownout-probe"
    header = struct.pack(">hhih", 3, 4, 1, len(client)) + client
    body = struct.pack(">ib", -1, 0)  # all topics (null array), no auto-creation
    msg = header + body
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(struct.pack(">i", len(msg)) + msg)
        (size,) = struct.unpack(">i", _recv_exact(s, 4))
        data = _recv_exact(s, size)
    pos = 8  # correlation id, throttle_time_ms
    (n,) = struct.unpack_from(">i", data, pos)
    pos += 4
    brokers = []
    for _ in range(max(n, 0)):
        node_id, hlen = struct.unpack_from(">ih", data, pos)
        pos += 6
        bhost = data[pos:pos + hlen].decode()
        pos += hlen
        (bport, rlen) = struct.unpack_from(">ih", data, pos)
        pos += 6 + max(rlen, 0)
        brokers.append((node_id, bhost, bport))
    return brokers


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    # An orphaned JVM would hold ports and 512 MB after a killed test run.
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class KafkaBroker:
    """One throwaway KRaft broker+controller on free loopback ports.

    Parameters: ``libs`` (jar dir; fetched when None), ``port`` (client port; free when None),
    ``startup_timeout`` seconds, ``java`` executable, ``config`` extra server properties.
    The JVM dies with the thread that started it (PR_SET_PDEATHSIG), so start it from the
    main thread or another long-lived one.
    """

    def __init__(self, libs: Path | str | None = None, *, port: int | None = None,
                 startup_timeout: float = 120.0, java: str | None = None,
                 config: dict[str, str] | None = None, sasl_ssl: bool = False,
                 scram_users: dict[str, str] | None = None) -> None:
        self.libs = Path(libs) if libs else None
        self.port = port
        self.startup_timeout = startup_timeout
        self.java = java or _java()
        self.extra_config = dict(config or {})
        self.sasl_ssl = sasl_ssl
        self.scram_users = dict(scram_users or {})
        if self.scram_users and not sasl_ssl:
            raise BrokerError("scram_users need sasl_ssl=True")
        for name in self.scram_users:
            if not name or any(c in name for c in "=,[] "):
                raise BrokerError(f"scram user name {name!r}: must be non-empty without '=', ',', '[', ']' or spaces")
        self.host = "127.0.0.1"
        self.workdir: Path | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self.started_in: float | None = None
        self.controller_port: int | None = None
        self.internal_port: int | None = None  # PLAINTEXT, broker-internal and probes, with sasl_ssl
        self._halted = False

    @property
    def security_protocol(self) -> str:
        return "SASL_SSL" if self.sasl_ssl else "PLAINTEXT"

    @property
    def ca_file(self) -> Path:
        """The PEM of the throwaway CA that signed the broker's certificate (``sasl_ssl`` only)."""
        if not self.sasl_ssl or self.workdir is None:
            raise BrokerError("ca_file: the broker is not started with sasl_ssl=True")
        return self.workdir / "tls" / "ca.pem"

    @property
    def bootstrap_servers(self) -> str:
        if self.proc is None or self.port is None:
            raise BrokerError("broker not started")
        return f"{self.host}:{self.port}"

    @property
    def log_path(self) -> Path | None:
        return self.workdir / "kafka.log" if self.workdir else None

    def log_tail(self, lines: int = 60) -> str:
        path = self.log_path
        if path is None or not path.exists():
            return "(no log)"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def _properties(self, port: int, controller_port: int, data: Path) -> str:
        props = self._base_properties(port, controller_port, data)
        if self.sasl_ssl:
            assert self.workdir is not None and self.internal_port is not None
            tls = self.workdir / "tls"
            props.update({
                "listeners": f"SASL_SSL://{self.host}:{port},INTERNAL://{self.host}:{self.internal_port},"
                             f"CONTROLLER://{self.host}:{controller_port}",
                "advertised.listeners": f"SASL_SSL://{self.host}:{port},INTERNAL://{self.host}:{self.internal_port}",
                "inter.broker.listener.name": "INTERNAL",
                "listener.security.protocol.map": "SASL_SSL:SASL_SSL,INTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT",
                "sasl.enabled.mechanisms": "SCRAM-SHA-512",
                "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config":
                    "org.apache.kafka.common.security.scram.ScramLoginModule required;",
                "ssl.keystore.type": "PEM",
                "ssl.keystore.location": str(tls / "broker-keystore.pem"),
                "ssl.client.auth": "none",
            })
        props.update(self.extra_config)
        return "".join(f"{k}={v}\n" for k, v in props.items())

    def _base_properties(self, port: int, controller_port: int, data: Path) -> dict[str, str]:
        return {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@{self.host}:{controller_port}",
            "listeners": f"PLAINTEXT://{self.host}:{port},CONTROLLER://{self.host}:{controller_port}",
            "advertised.listeners": f"PLAINTEXT://{self.host}:{port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": str(data),
            "num.partitions": "1",
            "default.replication.factor": "1",
            "min.insync.replicas": "1",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "3",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": "3",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            # Topics are created by the code with their policies, as in production clusters.
            "auto.create.topics.enable": "false",
            "log.flush.interval.messages": "9223372036854775807",
            "num.network.threads": "2",
            "num.io.threads": "2",
            "background.threads": "2",
            "log.cleaner.threads": "1",
            "log.cleaner.dedupe.buffer.size": str(8 * 1024 * 1024),
        }

    def _make_tls(self) -> None:
        """A throwaway CA and a broker certificate for 127.0.0.1/localhost, with openssl."""
        assert self.workdir is not None
        openssl = shutil.which("openssl")
        if openssl is None:
            raise BrokerError("openssl is not on PATH; install it (apt-get install openssl) for sasl_ssl=True")
        tls = self.workdir / "tls"
        tls.mkdir()
        (tls / "broker.ext").write_text(textwrap.dedent("""\
            subjectAltName = IP:127.0.0.1, DNS:localhost
            basicConstraints = CA:FALSE
            keyUsage = digitalSignature, keyEncipherment
            extendedKeyUsage = serverAuth
            """))
        steps = [
            ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
             "-days", "2", "-subj", "/CN=brownout throwaway test CA"],
            ["req", "-newkey", "rsa:2048", "-nodes", "-keyout", "broker.key", "-out", "broker.csr",
             "-subj", "/CN=localhost"],
            ["x509", "-req", "-in", "broker.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
             "-out", "broker.pem", "-days", "2", "-extfile", "broker.ext"],
        ]
        for args in steps:
            proc = subprocess.run([openssl, *args], cwd=tls, capture_output=True, text=True)
            if proc.returncode != 0:
                raise BrokerError(f"openssl {args[0]} failed (exit {proc.returncode}): {proc.stderr[-2000:]}")
        # Kafka's PEM keystore: the PKCS#8 key, then the certificate chain.
        (tls / "broker-keystore.pem").write_text((tls / "broker.key").read_text() + (tls / "broker.pem").read_text()
                                                 + (tls / "ca.pem").read_text())

    def _java_cmd(self, main: str, *args: str) -> list[str]:
        assert self.libs is not None and self.workdir is not None
        return [self.java, *JVM_OPTS, f"-Dlog4j2.configurationFile={self.workdir / 'log4j2.properties'}",
                "-cp", f"{self.libs}/*", main, *args]

    def start(self) -> "KafkaBroker":
        """Format storage and start the JVM; return once a Metadata request lists this broker."""
        if self.proc is not None:
            return self
        began = time.monotonic()
        self.libs = self.libs or fetch()
        fixed_port = self.port is not None
        for attempt in range(3):
            try:
                self._start_once(self.port if fixed_port else free_port())
            except BrokerError as exc:
                self._cleanup()
                # Another process may take a "free" port between our probe and the JVM's bind.
                if fixed_port or "Address already in use" not in str(exc) or attempt == 2:
                    raise
                continue
            except BaseException:
                self._cleanup()
                raise
            self.started_in = time.monotonic() - began
            return self
        raise AssertionError("unreachable")

    def _start_once(self, port: int) -> None:
        self.port = port
        taken = {port}
        self.controller_port = _free_port_except(taken)
        self.internal_port = _free_port_except(taken | {self.controller_port}) if self.sasl_ssl else None
        self.workdir = Path(tempfile.mkdtemp(prefix="brownout-kafka-"))
        if self.sasl_ssl:
            self._make_tls()
        props = self.workdir / "server.properties"
        props.write_text(self._properties(port, self.controller_port, self.workdir / "data"))
        (self.workdir / "log4j2.properties").write_text(LOG4J2)
        scram = [arg for name, password in self.scram_users.items()
                 for arg in ("--add-scram", f"SCRAM-SHA-512=[name={name},password={password}]")]
        with open(self.workdir / "kafka.log", "wb") as log:
            fmt = subprocess.run(self._java_cmd("kafka.tools.StorageTool", "format",
                                                # "=": a random id may start with "-", which argparse takes for an option
                                                f"--cluster-id={_cluster_id()}", "-c", str(props), *scram), stdout=log, stderr=subprocess.STDOUT)
        if fmt.returncode != 0:
            raise BrokerError(f"formatting KRaft storage failed (exit {fmt.returncode}):\n{self.log_tail()}")
        self._launch()

    def _launch(self) -> None:
        assert self.workdir is not None
        with open(self.workdir / "kafka.log", "ab") as log:
            self.proc = subprocess.Popen(self._java_cmd("kafka.Kafka", str(self.workdir / "server.properties")),
                                         stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         start_new_session=True, preexec_fn=_die_with_parent)
        self._wait_ready()

    def halt(self, *, kill: bool = False, timeout: float = 20.0) -> None:
        """Stop the JVM but keep its ports, log dir and data: a broker restart's first half.

        SIGTERM (a controlled shutdown) unless ``kill`` (SIGKILL: a crash); :meth:`resume` starts it again.
        """
        proc = self.proc
        if proc is None:
            raise BrokerError("halt: broker not started")
        if proc.poll() is None:
            if kill:
                proc.kill()
            else:
                proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._halted = True

    def resume(self) -> float:
        """Start the halted broker again on the same ports and data; return the seconds it took."""
        if self.proc is None or self.workdir is None or not self._halted:
            raise BrokerError("resume: the broker is not halted")
        began = time.monotonic()
        self._halted = False
        try:
            self._launch()
        except BaseException:
            self._cleanup()
            raise
        return time.monotonic() - began

    def _wait_ready(self) -> None:
        assert self.proc is not None and self.port is not None
        # A SASL_SSL listener does not answer a plain Metadata request: probe the internal one.
        probe = self.internal_port if self.sasl_ssl else self.port
        assert probe is not None
        deadline = time.monotonic() + self.startup_timeout
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            code = self.proc.poll()
            if code is not None:
                raise BrokerError(f"Kafka exited with code {code} while starting; log tail:\n{self.log_tail()}")
            try:
                if any(p == probe for _, _, p in metadata_brokers(self.host, probe)):
                    return
            except (OSError, struct.error) as exc:
                last_error = exc
            time.sleep(0.1)
        raise BrokerError(f"Kafka did not answer a Metadata request on {self.host}:{probe} within "
                          f"{self.startup_timeout:.0f} s (last error: {last_error}); log tail:\n{self.log_tail()}")

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM (a clean controlled shutdown), SIGKILL after ``timeout``; remove the temp dir."""
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._cleanup()

    def _cleanup(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None

    def __enter__(self) -> "KafkaBroker":
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def _free_port_except(taken: set[int]) -> int:
    port = free_port()
    while port in taken:
        port = free_port()
    return port


def _java() -> str:
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").exists():
        return str(Path(home) / "bin" / "java")
    found = shutil.which("java")
    if found is None:
        raise BrokerError("java is not on PATH (Kafka 4.1 needs Java 17+); install it "
                          "(apt-get install openjdk-17-jre-headless) or set JAVA_HOME")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("fetch", help="download the broker jars into the cache (idempotent)")
    run = sub.add_parser("run", help="start a broker, print its bootstrap address, serve until Ctrl-C")
    run.add_argument("--port", type=int, default=None, help="client port (default: a free one)")
    run.add_argument("--sasl-ssl", action="store_true", help="a SASL_SSL (SCRAM-SHA-512) listener with a throwaway CA")
    run.add_argument("--user", action="append", default=[], metavar="NAME=PASSWORD",
                     help="a SCRAM-SHA-512 user (with --sasl-ssl; repeatable)")
    args = parser.parse_args(argv)
    try:
        if args.command == "fetch":
            print(fetch())
            return 0
        users = dict(u.split("=", 1) for u in args.user if "=" in u)
        broker = KafkaBroker(port=args.port, sasl_ssl=args.sasl_ssl, scram_users=users)

        def on_term(signum: int, frame: object) -> None:
            raise KeyboardInterrupt

        signal.signal(signal.SIGTERM, on_term)
        try:
            broker.start()
            print(broker.bootstrap_servers, flush=True)
            if broker.sasl_ssl:
                print(f"SASL_SSL (SCRAM-SHA-512); CA file {broker.ca_file}", file=sys.stderr, flush=True)
            print(f"Kafka {KAFKA_VERSION} ready in {broker.started_in:.1f} s; log {broker.log_path}; "
                  f"export KAFKA_BOOTSTRAP_SERVERS={broker.bootstrap_servers}; Ctrl-C stops it",
                  file=sys.stderr, flush=True)
            while broker.proc is not None and broker.proc.poll() is None:
                time.sleep(0.5)
            print(f"Kafka exited; log tail:\n{broker.log_tail()}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            return 0
        finally:
            broker.stop()
    except BrokerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
