"""Load a rule file: the default pack first, then the file over it, then validation naming field and line.

>>> rs = load_rules()
>>> rs.rule("ttft_drift").fire_ratio, rs.step
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

from brownout.detectors.registry import RULES
from brownout.detectors.settings import Settings, SettingError
from brownout.rules.model import SECTIONS, Override, RuleError, RuleSet

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
        return RuleError(path, message, line=lines.get(path) or _parent_line(lines, path), source=source)

    allowed = set(SECTIONS) | {"rules", "overrides", "breaker"}
    for k in top:
        if k not in allowed:
            raise fail(str(k), f"unknown section; valid sections are: {', '.join(sorted(allowed))}")
    built: dict[str, Settings] = {}
    for section, cls in SECTIONS.items():
        built[section] = _settings(cls, top.get(section), defaults.get(section), section, fail)
    user_rules = top.get("rules") or {}
    if not isinstance(user_rules, dict):
        raise fail("rules", "must be a mapping of rule name to settings")
    for name in user_rules:
        if name not in RULES:
            raise fail(f"rules.{name}", f"unknown rule; valid rules are: {', '.join(RULES)}")
    rules: dict[str, Settings] = {}
    for name, detector in RULES.items():
        rules[name] = _settings(detector.Settings, user_rules.get(name), (defaults.get("rules") or {}).get(name),
                                f"rules.{name}", fail)

    overrides = []
    raw_overrides = top.get("overrides", defaults.get("overrides")) or []
    if not isinstance(raw_overrides, list):
        raise fail("overrides", "must be a list of {match, rules}")
    for i, entry in enumerate(raw_overrides):
        overrides.append(_override(entry, f"overrides[{i}]", rules, fail))

    breaker = top.get("breaker", defaults.get("breaker")) or {}
    if not isinstance(breaker, dict):
        raise fail("breaker", f"must be a mapping, got {breaker!r}")
    _check_breaker(breaker, lines, source)
    return RuleSet(rules, engine=built["engine"], baseline=built["baseline"],  # type: ignore[arg-type]
                   overrides=tuple(overrides), breaker_settings=breaker, source=source)


def _settings(cls: type[Settings], user: Any, default: Any, path: str, fail: Any) -> Settings:
    """The class defaults, then the default pack's values, then the file's; errors name the field."""
    for part in (default, user):
        if part is not None and not isinstance(part, dict):
            raise fail(path, f"must be a mapping of settings, got {part!r}")
    try:
        base = cls.from_mapping(default)
    except SettingError as exc:  # a broken default pack is a bug of ours: say where
        raise RuleError(f"{path}.{exc.field}", exc.message, source="default.yaml") from None
    try:
        return cls.from_mapping(user, base) if user else base
    except SettingError as exc:
        raise fail(f"{path}.{exc.field}", exc.message) from None


def _parent_line(lines: dict[str, int], path: str) -> int | None:
    while "." in path:
        path = path.rsplit(".", 1)[0]
        if path in lines:
            return lines[path]
    return None


def _override(entry: Any, path: str, base: Mapping[str, Settings], fail: Any) -> Override:
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
        if name not in RULES:
            raise fail(rpath, f"unknown rule; valid rules are: {', '.join(RULES)}")
        if not isinstance(settings, dict):
            raise fail(rpath, "must be a mapping of settings")
        cls = type(base[name])
        try:
            part = cls.check_partial(settings)
            cls.from_mapping(part, base[name])  # cross-field checks against the defaults
        except SettingError as exc:
            raise fail(f"{rpath}.{exc.field}", exc.message) from None
        checked[name] = part
    return Override(globs["provider"], globs["region"], globs["model"], checked)


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
