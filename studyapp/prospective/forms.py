from django import forms

from studyapp.experiments.models import TrainingRun


def registered_runs():
    """Done runs with weights and a test evaluation: the models a PI may freeze."""
    return (TrainingRun.objects.filter(status=TrainingRun.Status.DONE, evaluation__isnull=False).exclude(weights="")
            .select_related("experiment").order_by("-experiment__created_at", "model_name"))


class FreezeForm(forms.Form):
    run = forms.ModelChoiceField(queryset=registered_runs(), label="Registered model",
                                 help_text="A done run with saved weights; its test threshold labels the predictions.")
    reason = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}),
                             help_text="Required when a model is already frozen: why it is retired.")
    confirm = forms.BooleanField(label="I understand a frozen model can't be changed, only retired by a new freeze.")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["run"].queryset = registered_runs()
        self.fields["run"].label_from_instance = lambda run: (
            f"{run.model_name} · {run.experiment.name} (run {run.pk}, threshold "
            f"{run.evaluation.get('threshold', 0.5):.3f})")


class WidthForm(forms.Form):
    target_width = forms.FloatField(min_value=0.01, max_value=1.0, initial=0.2, label="Target CI width",
                                    help_text="Full width of the 95% CI wanted for sensitivity and specificity.")
