"""`manage.py shell` imports every model, the audit-history models too, without warnings."""

import io
from contextlib import redirect_stdout

from django.apps import apps
from django.core.management import call_command


def test_shell_imports_every_model_including_history_models():
    out = io.StringIO()
    with redirect_stdout(out):  # the command's own messages and what -c prints
        call_command("shell", command="print('history', HistoricalHand._meta.db_table, Hand._meta.db_table)",
                     verbosity=2, stdout=out, stderr=out)
    text = out.getvalue()
    assert "could not be automatically imported" not in text
    assert "history cohort_historicalhand cohort_hand" in text
    history_models = [m for m in apps.get_models() if m.__name__.startswith("Historical")]
    assert len(history_models) >= 17
    for model in history_models:
        assert model.__name__ in text, model.__name__
