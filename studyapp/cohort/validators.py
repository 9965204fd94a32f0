"""Field validators of the cohort models: the web form, the API and the CSV import all reach them through
the model's full_clean, so the same readable message lands on the same field everywhere."""

from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator

ADULT_AGE_YEARS = (18, 110)

validate_study_code = RegexValidator(
    r"\A[A-Za-z0-9_-]+\Z",
    message="Use only letters, digits, '-' or '_' in a study code (no spaces or other characters).",
    code="invalid_study_code",
)


def validate_adult_age(value: int) -> None:
    # A plain function rather than MinValueValidator: DRF swaps those for its own generic message.
    low, high = ADULT_AGE_YEARS
    if value is not None and not low <= value <= high:
        raise ValidationError("Participants are adults: enter an age from %(low)s to %(high)s years (got %(value)s).",
                              code="age_out_of_range", params={"low": low, "high": high, "value": value})
