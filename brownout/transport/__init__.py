"""Transports: topics of keyed records. ``MemoryTransport`` (one process) and
``KafkaTransport`` (aiokafka, imported lazily so the hooks never load it)."""

from typing import Any

from brownout.transport.base import (Consumer, DeliveryError, Producer, Record, TopicSpec, Transport,
                                     caught_up, default_topics)
from brownout.transport.memory import MemoryTransport

__all__ = ["Consumer", "DeliveryError", "KafkaSettings", "KafkaTransport", "MemoryTransport", "Producer",
           "Record", "TopicSpec", "Transport", "caught_up", "default_topics"]


def __getattr__(name: str) -> Any:  # lazy: aiokafka is heavy and the hooks must not load it
    if name in ("KafkaTransport", "KafkaSettings"):
        from brownout.transport import kafka

        return getattr(kafka, name)
    raise AttributeError(name)
