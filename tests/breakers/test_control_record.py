"""ControlRecord: DESIGN's schema exactly (revision 2 adds readings), both ways compatible with
revision 1, round trip, validation; HMAC signing with rotation."""

import json

import pytest

from brownout import semconv as sc
from brownout.breakers import ControlRecord, Readings, Signer, load_signing_key, sign, verify
from brownout.model import Key

KEY = Key("openai", "eastus", "gpt-4o")


def record(**kw):
    base = {"key": KEY, "state": "open", "since": 100.0, "until": 130.0, "reason": "tripped", "rule": "error_breaker",
            "observed": 0.4, "baseline": 0.01, "probe_fraction": 0.1, "seq": 3, "issued_at": 100.0, "expires_at": 130.0}
    base.update(kw)
    return ControlRecord(**base)


V1_FIELDS = ["v", "key", "state", "since", "until", "reason", "rule", "observed", "baseline",
             "probe_fraction", "seq", "issued_at", "expires_at"]
#: A record as a revision-1 collector published it (no ``rev``, no ``readings``).
V1_VALUE = (b'{"v":1,"key":{"provider":"openai","region":"eastus","model":"gpt-4o"},"state":"open",'
            b'"since":100.0,"until":130.0,"reason":"tripped","rule":"error_breaker","observed":0.4,'
            b'"baseline":0.01,"probe_fraction":0.1,"seq":3,"issued_at":100.0,"expires_at":130.0}')


def test_schema_is_design_exactly():
    d = json.loads(record(readings=Readings(ttft_p50=0.5)).to_bytes())
    assert list(d) == V1_FIELDS[:1] + ["rev"] + V1_FIELDS[1:] + ["readings"]
    assert d["v"] == 1 and d["rev"] == 2 and d["key"] == {"provider": "openai", "region": "eastus", "model": "gpt-4o"}
    assert d["readings"] == {"ttft_p50": 0.5, "ttft_p95": None, "ttft_p50_baseline": None, "ttft_p95_baseline": None,
                             "requests_per_s": None, "capacity_error_rate": None}
    assert json.loads(record().to_bytes())["readings"] is None


def v1_reader(value):
    """What a revision-1 reader checks (brownout <= the guard's removal): ``v`` must be 1, the
    v1 fields with their types; any other field is ignored."""
    d = json.loads(value)
    assert d["v"] == 1
    assert set(d["key"]) == {"provider", "region", "model"}
    assert d["state"] in ("closed", "open", "half_open")
    assert isinstance(d["seq"], int) and d["seq"] >= 0
    for name in ("since", "issued_at", "expires_at"):
        assert isinstance(d[name], float)
    return {name: d[name] for name in V1_FIELDS}


def test_a_revision_1_reader_reads_revision_2_records():
    rec = record(readings=Readings(ttft_p50=0.5, ttft_p95_baseline=0.9, requests_per_s=12.0))
    assert v1_reader(rec.to_bytes()) == v1_reader(V1_VALUE)


def test_a_revision_2_reader_reads_revision_1_records():
    rec = ControlRecord.from_bytes(V1_VALUE)
    assert rec == record() and rec.rev == 1 and rec.readings is None


def test_a_later_revision_is_read_for_what_this_one_knows():
    d = json.loads(record(readings=Readings(ttft_p50=0.5)).to_bytes())
    d.update(rev=3, shiny_new_field={"x": 1})
    d["readings"]["tokens_per_s"] = 80.0
    rec = ControlRecord.from_bytes(json.dumps(d).encode())
    assert rec.rev == 3 and rec.readings == Readings(ttft_p50=0.5) and rec.state == "open"


def test_round_trip_and_kafka_key():
    rec = record(state="closed", until=None, observed=None, baseline=None)
    assert ControlRecord.from_bytes(rec.to_bytes()) == rec
    with_readings = record(readings=Readings(0.4, 0.9, 0.3, 0.7, 12.5, 0.01))
    assert ControlRecord.from_bytes(with_readings.to_bytes()) == with_readings
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
    (lambda d: d.update(rev=0), "rev"),
    (lambda d: d.update(rev="2"), "rev"),
    (lambda d: d.update(readings=[0.5]), "readings"),
    (lambda d: d.update(readings={"ttft_p50": -0.5}), "readings.ttft_p50"),
    (lambda d: d.update(readings={"ttft_p95_baseline": "fast"}), "readings.ttft_p95_baseline"),
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
