from django import forms

from mlworker.ml.config import LR_MAX, LR_MIN
from mlworker.ml.constants import MODEL_LABELS, MODEL_NAMES
from mlworker.ml.normalise import SITE_NORMALISATIONS

from .models import Split
from .services import MAX_NULL_CONTROLS, domain_choices


class SplitForm(forms.Form):
    name = forms.CharField(max_length=120, initial="main")
    seed = forms.IntegerField(min_value=0, initial=0)
    test_per_group = forms.IntegerField(min_value=1, initial=10, help_text="Test hands per group.")
    train_per_group = forms.IntegerField(min_value=1, initial=40, required=False,
                                         help_text="Training hands per group (empty: all remaining).")
    kind = forms.ChoiceField(choices=Split.Kind.choices, initial=Split.Kind.INTERNAL, required=False,
                             help_text="External: train and test internally on the chosen sites or scanners, and "
                                       "test on every eligible hand of the others.")
    domain = forms.ChoiceField(choices=Split.Domain.choices, required=False, label="External by")
    train_domains = forms.MultipleChoiceField(required=False, widget=forms.CheckboxSelectMultiple,
                                              label="Train on (sites or scanners)")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["train_domains"].choices = [
            (value, f"{domain} {value}") for domain in (Split.Domain.SITE, Split.Domain.SCANNER)
            for value in domain_choices(domain)]

    def clean_kind(self) -> str:
        return self.cleaned_data["kind"] or Split.Kind.INTERNAL


class LaunchForm(forms.Form):
    name = forms.CharField(max_length=120, required=False)
    models = forms.MultipleChoiceField(choices=[(m, MODEL_LABELS[m]) for m in MODEL_NAMES], initial=list(MODEL_NAMES),
                                       widget=forms.CheckboxSelectMultiple)
    epochs = forms.IntegerField(min_value=1, max_value=500, initial=30)
    batch_size = forms.IntegerField(min_value=1, max_value=1024, initial=32)
    lr = forms.FloatField(min_value=LR_MIN, max_value=LR_MAX, initial=1e-4, label="Learning rate")
    optimizer = forms.ChoiceField(choices=[("adam", "Adam"), ("adamw", "AdamW"), ("sgd", "SGD")], initial="adam")
    early_stopping_patience = forms.IntegerField(min_value=1, initial=5, required=False)
    input_size = forms.IntegerField(min_value=16, max_value=512, initial=224)
    seed = forms.IntegerField(min_value=0, initial=0)
    random_init = forms.BooleanField(required=False, label="Random initialisation (no ImageNet weights; recorded)")
    site_normalisation = forms.ChoiceField(
        choices=[(n, n.replace("_", " ")) for n in SITE_NORMALISATIONS], initial="none", required=False,
        label="Per-site normalisation",
        help_text="per site zscore: each site's crops standardised by its own mean and SD (training crops; an unseen "
                  "site's own crops, no labels) onto the training crops' statistics. External splits only.")
    null_controls = forms.IntegerField(
        min_value=0, max_value=MAX_NULL_CONTROLS, initial=0, required=False, label="Permuted-label controls",
        help_text="Also train the same models this many times with the training labels shuffled across hands (a "
                  "negative control: their test AUCs show chance on this split). Each costs as much as the real run.")

    def clean_site_normalisation(self) -> str:
        return self.cleaned_data["site_normalisation"] or "none"

    HYPERPARAMETERS = ("epochs", "batch_size", "lr", "optimizer", "early_stopping_patience", "input_size", "seed",
                       "site_normalisation")
