"""A real single-node Kafka broker (KRaft) on 127.0.0.1 for tests, benches and trying things.

    python tests/kafka.py fetch      resolve the broker's jars into the cache (what .ci/run does)
    python tests/kafka.py run        start a broker, print its address, stop on Ctrl-C

The jars of `org.apache.kafka:kafka_2.13` come from Maven Central once, into
`$HEADWATER_CACHE/kafka-<version>/` (default `~/.cache/headwater`), which every later run reuses.
A broker gets free ports, its own folder under /tmp, 3 partitions per new topic, and is stopped
by its PID.
"""

from __future__ import annotations

import base64
import fcntl
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

VERSION = "4.1.1"
START_TIMEOUT_S = 60.0
_POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>headwater.tests</groupId><artifactId>kafka-broker</artifactId><version>1</version>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId>
      <version>{version}</version>
    </dependency>
  </dependencies>
</project>
"""


def cache() -> Path:
    return Path(os.environ.get("HEADWATER_CACHE", Path.home() / ".cache" / "headwater"))


def available() -> bool:
    """Java, and the jars or Maven to fetch them."""
    return shutil.which("java") is not None and (
        (cache() / f"kafka-{VERSION}" / ".complete").exists() or shutil.which("mvn") is not None
    )


def require() -> None:
    """Skip a test without Java/Maven; under CI=true, where `.ci/run` installs them, their
    absence fails the test instead."""
    import pytest

    if available():
        return
    if os.environ.get("CI") == "true":
        pytest.fail("java and mvn are missing under CI=true (.ci/run installs them)")
    pytest.skip("java / mvn not installed: no Kafka broker")


def jars() -> Path:
    """The folder of the broker's jars, resolved with Maven the first time (one process at a
    time: test workers wait for each other)."""
    folder = cache() / f"kafka-{VERSION}"
    done = folder / ".complete"
    if done.exists():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    with open(folder.parent / f".kafka-{VERSION}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if done.exists():
            return folder
        with tempfile.TemporaryDirectory(prefix="hw-kafka-pom-") as work:
            Path(work, "pom.xml").write_text(_POM.format(version=VERSION), encoding="utf-8")
            subprocess.run(
                [
                    "mvn",
                    "-q",
                    "-B",
                    "dependency:copy-dependencies",
                    f"-DoutputDirectory={folder}",
                    "-DincludeScope=runtime",
                ],
                cwd=work,
                check=True,
            )
        done.touch()
    return folder


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def broker(partitions: int = 3) -> Iterator[str]:
    """Start a broker; yields its bootstrap address (`127.0.0.1:<port>`)."""
    classpath = f"{jars()}/*"
    folder = Path(tempfile.mkdtemp(prefix="hw-kafka-", dir="/tmp"))
    port, controller = _free_port(), _free_port()
    config = folder / "server.properties"
    config.write_text(
        "\n".join(
            [
                "process.roles=broker,controller",
                "node.id=1",
                f"controller.quorum.voters=1@127.0.0.1:{controller}",
                f"listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller}",
                f"advertised.listeners=PLAINTEXT://127.0.0.1:{port}",
                "controller.listener.names=CONTROLLER",
                "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
                "inter.broker.listener.name=PLAINTEXT",
                f"log.dirs={folder / 'logs'}",
                f"num.partitions={partitions}",
                "offsets.topic.replication.factor=1",
                "offsets.topic.num.partitions=3",
                "transaction.state.log.replication.factor=1",
                "transaction.state.log.min.isr=1",
                "share.coordinator.state.topic.replication.factor=1",
                "share.coordinator.state.topic.min.isr=1",
                "group.initial.rebalance.delay.ms=0",
                "auto.create.topics.enable=false",
                "",
            ]
        ),
        encoding="utf-8",
    )
    java = ["java", "-Xmx384m", "-Xss1m", "-XX:+UseSerialGC", "-cp", classpath]
    # a cluster id starting with "-" would be read as an option
    cluster = "k" + base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")[1:]
    subprocess.run(
        [*java, "kafka.tools.StorageTool", "format", "-t", cluster, "-c", str(config)],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    log = open(folder / "broker.log", "wb")  # noqa: SIM115 (closed when the broker stops)
    process = subprocess.Popen(
        [*java, "kafka.Kafka", str(config)], stdout=log, stderr=subprocess.STDOUT
    )
    address = f"127.0.0.1:{port}"
    try:
        _wait_ready(address, process, folder)
        yield address
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
        shutil.rmtree(folder, ignore_errors=True)


def _wait_ready(address: str, process: subprocess.Popen[bytes], folder: Path) -> None:
    from confluent_kafka.admin import AdminClient

    deadline = time.monotonic() + START_TIMEOUT_S
    admin = AdminClient({"bootstrap.servers": address, "log_level": 0})
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = (folder / "broker.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"the Kafka broker exited ({process.returncode}):\n{tail}")
        try:
            metadata = admin.list_topics(timeout=2)
            if metadata.brokers:
                return
        except Exception:  # not listening yet
            time.sleep(0.2)
    raise RuntimeError(f"the Kafka broker at {address} did not start in {START_TIMEOUT_S:.0f} s")


def create_topic(address: str, name: str, partitions: int = 3) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": address})
    for future in admin.create_topics([NewTopic(name, partitions, 1)]).values():
        future.result()


def produce(
    address: str,
    topic: str,
    values: list[bytes | None],
    *,
    keys: list[bytes | None] | None = None,
    partition: int | None = None,
) -> None:
    """Send `values` (and `keys`), round-robin over partitions unless `partition` is given."""
    from confluent_kafka import Producer

    producer = Producer(
        {"bootstrap.servers": address, "linger.ms": 5, "acks": "all", "log_level": 0}
    )
    where = {} if partition is None else {"partition": partition}
    for i, value in enumerate(values):
        key = keys[i] if keys is not None else None
        while True:
            try:
                producer.produce(topic, value=value, key=key, **where)
                break
            except BufferError:  # the local queue is full: let deliveries drain it
                producer.poll(0.1)
        if i % 10_000 == 0:
            producer.poll(0)
    left = producer.flush(60)
    if left:
        raise RuntimeError(f"{left} message(s) to {topic} were not delivered")


if __name__ == "__main__":
    command = sys.argv[1] if len(sys.argv) > 1 else "run"
    if command == "fetch":
        print(jars())
    elif command == "run":

        def stopped(*_: object) -> None:
            raise KeyboardInterrupt

        # SIGTERM too (a background job ignores Ctrl-C): the broker is stopped either way
        signal.signal(signal.SIGTERM, stopped)
        with broker() as bootstrap:
            print(
                f"Kafka broker on {bootstrap} (Ctrl-C or kill {os.getpid()} stops it)", flush=True
            )
            with suppress(KeyboardInterrupt):
                signal.pause()
    else:
        sys.exit(f"usage: {sys.argv[0]} [fetch|run]")
