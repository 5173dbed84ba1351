"""brownout: see an LLM provider's brownout before your users do.

>>> from brownout import Key
>>> str(Key("anthropic", "us-east-1", "claude-sonnet-4"))
'anthropic/us-east-1/claude-sonnet-4'
"""

from brownout.model import Decision, Event, Finding, InvalidEvent, Key

__version__ = "0.1.0"
__all__ = ["Decision", "Event", "Finding", "InvalidEvent", "Key", "__version__"]
