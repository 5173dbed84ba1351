"""ControlRecord: DESIGN's schema exactly, round trip, validation; HMAC signing with rotation."""

import json

import pytest

from brownout import semconv as sc
from brownout.breakers import ControlRecord, Signer, load_signing_key, sign, verify
from brownout.model import Key

KEY = Key("openai", "eastus", "gpt-4o")


def record(**kw):
    base = dict(key=KEY, state="open", since=100.0, until=130.0, reason="tripped", rule="error_breaker",
                observed=0.4, baseline=0.01, probe_fraction=0.1, seq=3, issued_at=100.0, expires_at=130.0)
    base.update(kw)
    return ControlRecord(**base)


def test_schema_is_design_exactly():
    d = json.loads(record().to_bytes())
    assert list(d) == ["v", "key", "state", "since", "until", "reason", "rule", "observed", "baseline",
                       "probe_fraction", "seq", "issued_at", "expires_at"]
    assert d["v"] == 1 and d["key"] == {"provider": "openai", "region": "eastus", "model": "gpt-4o"}


def test_round_trip_and_kafka_key():
    rec = record(state="closed", until=None, observed=None, baseline=None)
    assert ControlRecord.from_bytes(rec.to_bytes()) == rec
    assert rec.kafka_key() == b"openai/eastus/gpt-4o"


@pytest.mark.parametrize("mutate, field", [
    (lambda d: d.update(v=2), "v"),
    (lambda d: d.update(state="ajar"), "state"),
    (lambda d: d.update(seq=-1), "seq"),
    (lambda d: d.update(seq="3"), "seq"),
    (lambda d: d.pop("since"), "since"),
    (lambda d: d.update(expires_at="soon"), "expires_at"),
    (lambda d: d["key"].pop("region"), "key"),
    (lambda d: d.update(reason=5), "reason"),
])
def test_bad_record_names_field(mutate, field):
    d = json.loads(record().to_bytes())
    mutate(d)
    with pytest.raises(ValueError, match=rf"control record\.{field}"):
        ControlRecord.from_bytes(json.dumps(d).encode())


@pytest.mark.parametrize("value", [b"", b"not json", b"[1]", b"\xff\xfe"])
def test_garbage_is_a_value_error(value):
    with pytest.raises(ValueError, match="control record"):
        ControlRecord.from_bytes(value)


def test_signature_verifies_under_any_rotated_key():
    value = record().to_bytes()
    old, new = Signer(b"old-key"), Signer(b"new-key")
    headers = dict(new.headers(value))
    assert headers[sc.HEADER_SIGNATURE] == new.signature(value).encode()
    assert verify(value, new.headers(value), [b"old-key", b"new-key"])
    assert sign(value, b"new-key") == new.headers(value)
    assert verify(value, old.headers(value), {old.key_id: b"old-key", new.key_id: b"new-key"})
    # an unknown key id still verifies by trying every key
    assert verify(value, Signer(b"new-key", key_id="other").headers(value), [b"new-key"])


def test_forged_tampered_or_unsigned_is_refused():
    value = record().to_bytes()
    good = Signer(b"right").headers(value)
    assert not verify(value, Signer(b"wrong").headers(value), [b"right"])
    assert not verify(value.replace(b'"open"', b'"closed"'), good, [b"right"])
    assert not verify(value, (), [b"right"])
    assert not verify(value, ((sc.HEADER_SIGNATURE, b"\xff"),), [b"right"])
    assert not verify(None, good, [b"right"])


def test_signing_key_from_file_or_env(tmp_path):
    f = tmp_path / "key"
    f.write_bytes(b"filekey\n")
    assert load_signing_key(str(f), env={"BROWNOUT_SIGNING_KEY": "envkey"}) == b"filekey"
    assert load_signing_key(None, env={"BROWNOUT_SIGNING_KEY": "envkey"}) == b"envkey"
    assert load_signing_key(None, env={}) is None
    (tmp_path / "empty").write_bytes(b"\n")
    with pytest.raises(ValueError, match="key_file"):
        load_signing_key(str(tmp_path / "empty"))
