"""Formatting of metrics on the retraining pages."""

from django import template

register = template.Library()


@register.filter
def num(value, digits: int = 3) -> str:
    """A number to ``digits`` decimals; an en dash for none."""
    if value is None or value == "":
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    if number != 0 and (abs(number) < 1e-3 or abs(number) >= 1e5):
        return f"{number:.{int(digits)}g}"
    return f"{number:.{int(digits)}f}"


@register.filter
def metric(value) -> str:
    """``{"value", "ci_low", "ci_high", "n"}`` as "0.420 [0.310, 0.530] n=20"."""
    if not isinstance(value, dict) or value.get("value") is None:
        return "–"
    text = num(value.get("value"))
    if value.get("ci_low") is not None and value.get("ci_high") is not None:
        text += f" [{num(value['ci_low'])}, {num(value['ci_high'])}]"
    if value.get("n") is not None:
        text += f" n={value['n']}"
    return text


@register.filter
def get(mapping, key):
    if isinstance(mapping, dict):
        return mapping.get(key)
    return None
