"""BreakerBookCollector reads the book's counters and states at scrape time."""

from prometheus_client import CollectorRegistry

from brownout.breakers import BreakerBook, BreakerConfig
from brownout.breakers.metrics import BreakerBookCollector
from brownout.model import Event, Finding, Key

A = Key("openai", "eastus", "gpt-4o")
B = Key("openai", "westus", "gpt-4o")


def test_states_are_exported_and_every_key_opens():
    book = BreakerBook(BreakerConfig(jitter=0.0))
    reg = CollectorRegistry()
    reg.register(BreakerBookCollector(book))
    for k in (A, B):
        book.observe(Event(k, 0.0, 1.0))
        book.on_finding(Finding(10.0, "error_breaker", k, "trip", 0.5, 0.01, action="breaker"))
    book.advance(10.0)
    assert reg.get_sample_value("brownout_breaker_guard_held_total") is None  # the guard is gone
    assert reg.get_sample_value("brownout_breakers", {"state": "open"}) == 2
    assert reg.get_sample_value("brownout_breakers", {"state": "closed"}) == 0
    assert reg.get_sample_value("brownout_breaker_trips_ignored_total", {"reason": "rearm"}) == 0
