from django import template

from studyapp.experiments.estimates import duration as as_duration

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


@register.filter
def pvalue(value):
    """p-values as a paper prints them: three decimals, or '< 0.001'."""
    if value is None:
        return "—"
    value = float(value)
    return "< 0.001" if value < 0.001 else f"{value:.3f}"


@register.filter
def duration(seconds):
    """Seconds as people read them ('45 s', '12 min', '3 h 20 min')."""
    return as_duration(seconds)
