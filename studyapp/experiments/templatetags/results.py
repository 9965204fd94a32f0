from django import template

register = template.Library()


@register.filter
def get(mapping, key):
    """mapping[key] in templates (results are nested JSON)."""
    if mapping is None:
        return None
    return mapping.get(key) if hasattr(mapping, "get") else None


@register.filter
def num(value, digits=3):
    if value is None:
        return "—"
    try:
        return f"{float(value):.{int(digits)}f}"
    except (TypeError, ValueError):
        return value
