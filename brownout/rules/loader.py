"""Load a rule file: the default pack first, then the file over it, then validation naming field and line.

>>> rs = load_rules()
>>> rs.rule("ttft_drift")["fire_ratio"], rs.step
(1.2, 5.0)
>>> import tempfile, os
>>> with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
...     _ = f.write("rules:\\n  error_rate:\\n    fire_rate: 2\\n")
>>> try:
...     load_rules(f.name)
... except RuleError as e:
...     print(e.field, e.line)
rules.error_rate.fire_rate 3
>>> os.unlink(f.name)
"""

from __future__ import annotations

from importlib import resources
from typing import Any, Mapping

import yaml

from brownout.rules.model import SCHEMA, Override, RuleError, RuleSet, _merge, check_rule

__all__ = ["load_rules", "parse_rules", "default_text"]


def default_text() -> str:
    """The default rule pack shipped as package data (``brownout/rules/default.yaml``)."""
    return resources.files("brownout.rules").joinpath("default.yaml").read_text(encoding="utf-8")


def load_rules(path: str | None = None) -> RuleSet:
    """Defaults, then the file at ``path`` (if any), then validation; raises RuleError."""
    if path is None:
        return parse_rules("", source=None)
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as exc:
        raise RuleError("file", f"cannot read {path}: {exc.strerror or exc}", source=path) from None
    return parse_rules(text, source=path)


def parse_rules(text: str, source: str | None = "<string>") -> RuleSet:
    """Parse rule-file text over the default pack; raises RuleError naming the field and line."""
    defaults, _ = _compose(default_text(), "default.yaml")
    top, lines = _compose(text, source)
    if top is None:
        top = {}
    if not isinstance(top, dict):
        raise RuleError("<top>", "a rule file is a mapping (engine, baseline, rules, overrides, breaker)",
                        line=lines.get(""), source=source)

    def fail(path: str, message: str) -> RuleError:
        return RuleError(path, message, line=lines.get(path), source=source)

    allowed = set(SCHEMA) | {"overrides", "breaker"}
    for k in top:
        if k not in allowed:
            raise fail(str(k), f"unknown section; valid sections are: {', '.join(sorted(allowed))}")
    sections = ("overrides", "breaker")
    merged = _merge({k: v for k, v in defaults.items() if k not in sections},
                    {k: v for k, v in top.items() if k not in sections})
    checked = _validate(merged, SCHEMA, "", fail)
    for name, settings in checked["rules"].items():
        _cross(name, settings, f"rules.{name}", lines, source)

    overrides = []
    raw_overrides = top.get("overrides", defaults.get("overrides")) or []
    if not isinstance(raw_overrides, list):
        raise fail("overrides", "must be a list of {match, rules}")
    for i, entry in enumerate(raw_overrides):
        overrides.append(_override(entry, f"overrides[{i}]", checked["rules"], fail, lines, source))

    breaker = top.get("breaker", defaults.get("breaker")) or {}
    if not isinstance(breaker, dict):
        raise fail("breaker", f"must be a mapping, got {breaker!r}")
    _check_breaker(breaker, lines, source)
    return RuleSet(checked["rules"], engine=checked["engine"], baseline=checked["baseline"],
                   overrides=tuple(overrides), breaker_settings=breaker, source=source)


def _cross(name: str, settings: Mapping[str, Any], path: str, lines: dict[str, int], source: str | None) -> None:
    try:
        check_rule(name, settings, path)
    except RuleError as exc:
        raise RuleError(exc.field, exc.message, line=lines.get(exc.field) or lines.get(path),
                        source=source) from None


def _override(entry: Any, path: str, base: Mapping[str, Any], fail: Any, lines: dict[str, int],
              source: str | None) -> Override:
    if not isinstance(entry, dict):
        raise fail(path, "must be a mapping with `match` and `rules`")
    for k in entry:
        if k not in ("match", "rules"):
            raise fail(f"{path}.{k}", "unknown field; valid fields are: match, rules")
    match = entry.get("match")
    globs = {"provider": "*", "region": "*", "model": "*"}
    if isinstance(match, str):
        parts = match.split("/", 2)
        if len(parts) != 3:
            raise fail(f"{path}.match", f"a string match is provider/region/model globs, got {match!r}")
        globs = dict(zip(("provider", "region", "model"), parts))
    elif isinstance(match, dict):
        for k, v in match.items():
            if k not in globs:
                raise fail(f"{path}.match.{k}", "unknown field; valid fields are: provider, region, model")
            if not isinstance(v, str) or not v:
                raise fail(f"{path}.match.{k}", f"must be a glob string, got {v!r}")
            globs[k] = v
    else:
        raise fail(f"{path}.match", "must be a mapping of provider/region/model globs or 'p/r/m'")
    rules = entry.get("rules")
    if not isinstance(rules, dict) or not rules:
        raise fail(f"{path}.rules", "must be a non-empty mapping of rule name to settings")
    checked: dict[str, dict[str, Any]] = {}
    for name, settings in rules.items():
        rpath = f"{path}.rules.{name}"
        if name not in SCHEMA["rules"]:
            raise fail(rpath, f"unknown rule; valid rules are: {', '.join(SCHEMA['rules'])}")
        if not isinstance(settings, dict):
            raise fail(rpath, "must be a mapping of settings")
        part = _validate(settings, SCHEMA["rules"][name], rpath, fail, partial=True)
        full = _merge(base[name], part)
        _cross(name, full, rpath, lines, source)
        checked[name] = part
    return Override(globs["provider"], globs["region"], globs["model"], checked)


def _validate(value: Any, schema: Mapping[str, Any], path: str, fail: Any, partial: bool = False) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise fail(path, f"must be a mapping, got {value!r}")
    out: dict[str, Any] = {}
    for k, v in value.items():
        p = f"{path}.{k}" if path else str(k)
        spec = schema.get(k)
        if spec is None:
            raise fail(p, f"unknown field; valid fields are: {', '.join(schema)}")
        if isinstance(spec, dict):
            out[k] = _validate(v, spec, p, fail, partial)
        else:
            try:
                out[k] = spec(v)
            except ValueError as exc:
                raise fail(p, str(exc)) from None
    if not partial:
        for k in schema:
            if k not in out:
                raise fail(f"{path}.{k}" if path else k, "missing (the default pack must set every field)")
    return out


def _check_breaker(breaker: dict[str, Any], lines: dict[str, int], source: str | None) -> None:
    try:
        from brownout.breakers.config import BreakerConfig
    except ImportError:  # built lazily by RuleSet.breaker once the breakers part exists
        return
    try:
        BreakerConfig.from_mapping(breaker, path="breaker")
    except ValueError as exc:
        msg = str(exc)
        field = msg.split(":", 1)[0].strip() if msg.startswith("breaker") else "breaker"
        field = field.split()[0] if field else "breaker"
        raise RuleError(field, msg.split(":", 1)[1].strip() if ":" in msg and field != "breaker" else msg,
                        line=lines.get(field) or lines.get("breaker"), source=source) from None


def _compose(text: str, source: str | None) -> tuple[Any, dict[str, int]]:
    """YAML text to plain objects plus the 1-based line of every dotted field path."""
    lines: dict[str, int] = {}
    try:
        loader = yaml.SafeLoader(text)
        try:
            node = loader.get_single_node()
            if node is None:
                return None, lines
            return _build(loader, node, "", lines), lines
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise RuleError("<yaml>", str(getattr(exc, "problem", None) or exc),
                        line=mark.line + 1 if mark is not None else None, source=source) from None


def _build(loader: yaml.SafeLoader, node: yaml.Node, path: str, lines: dict[str, int]) -> Any:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for knode, vnode in node.value:
            k = loader.construct_object(knode, deep=True)
            p = f"{path}.{k}" if path else str(k)
            out[k] = _build(loader, vnode, p, lines)
            lines[p] = knode.start_mark.line + 1
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_build(loader, v, f"{path}[{i}]", lines) for i, v in enumerate(node.value)]
    return loader.construct_object(node, deep=True)
