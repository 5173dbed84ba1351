"""Rules: the rule model, the loader and the default pack (``brownout/rules/default.yaml``).

>>> rs = load_rules()
>>> sorted(rs.rules)[:3]
['error_breaker', 'error_rate', 'goodput']
"""

from brownout.rules.loader import load_rules, parse_rules
from brownout.rules.model import Override, RuleError, RuleSet

__all__ = ["load_rules", "parse_rules", "Override", "RuleError", "RuleSet"]
