from django.db import models


class FailedLogin(models.Model):
    """One failed sign-in (page or API token), kept to refuse password guessing across web processes."""

    username = models.CharField(max_length=150, db_index=True)  # as typed, lower-cased
    ip = models.GenericIPAddressField(null=True, blank=True)
    at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-at"]

    def __str__(self) -> str:
        return f"{self.username} from {self.ip or 'unknown'} at {self.at:%Y-%m-%d %H:%M}"
