"""Keys and traffic shared by the collector tests on the in-memory transport."""

from brownout.model import Event, Key

EAST = Key("openai", "eastus", "gpt-4o")
WEST = Key("openai", "westus", "gpt-4o")


def traffic(t0, seconds, degraded=False):
    """One request per second per key; EAST fails with 503 when degraded."""
    out = []
    for i in range(seconds):
        out.append(Event(WEST, t0 + i, 0.5, ttft=0.2, output_tokens=50))
        out.append(Event(EAST, t0 + i, 0.1, error_type="503") if degraded
                   else Event(EAST, t0 + i, 0.5, ttft=0.2, output_tokens=50))
    return out
