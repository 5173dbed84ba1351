"""The public surface of brownout.breakers, pinned."""

import brownout.breakers as breakers


def test_exported_members():
    assert sorted(breakers.__all__) == ["AsyncBreakerBoard", "BreakerBoard", "BreakerBook", "BreakerConfig",
                                        "ControlRecord", "HedgeBudget", "Readings", "Signer",
                                        "load_signing_key", "sign", "verify"]
    for name in breakers.__all__:
        assert getattr(breakers, name).__name__ == name
