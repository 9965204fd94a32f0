from django import template
from django.utils.html import format_html

from studyapp.cohort.models import Hand

register = template.Library()


@register.filter
def group_badge(group) -> str:
    """A study group as its badge, labelled as the model displays it: Control, CTS, Excluded, Needs review."""
    value = str(group)  # a Hand.group value or a staging.Group
    label = dict(Hand.GroupChoice.choices).get(value, value)
    return format_html('<span class="badge {}" data-group="{}">{}</span>', value, value, label)
