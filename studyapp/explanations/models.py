"""Explanations of a registered model's test frames: one job per (run, method), one row per explained frame."""

from django.db import models

from studyapp.clips.models import Frame
from studyapp.cohort.models import Hand
from studyapp.experiments.models import TrainingRun

# The attribution methods, as mlworker.explain.METHODS names them (a test keeps the two equal); kept here so
# the web process reads them without importing torch.
METHOD_LABELS = {"occlusion": "Occlusion", "lime": "LIME", "gradcam": "Grad-CAM"}


class ExplanationJob(models.Model):
    """The worker's explanation of one run's test frames by one method: progress, parameters, sanity check."""

    class Method(models.TextChoices):
        OCCLUSION = "occlusion", METHOD_LABELS["occlusion"]
        LIME = "lime", METHOD_LABELS["lime"]
        GRADCAM = "gradcam", METHOD_LABELS["gradcam"]

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    run = models.ForeignKey(TrainingRun, on_delete=models.CASCADE, related_name="explanation_jobs")
    method = models.CharField(max_length=10, choices=Method.choices)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    frames_done = models.PositiveIntegerField(default=0)
    frames_total = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True, default="")
    cancel_requested = models.BooleanField(default=False)
    task_id = models.CharField(max_length=64, blank=True, default="")
    worker = models.CharField(max_length=200, blank=True, default="")
    params = models.JSONField(default=dict, blank=True, help_text="The method's parameters (params.to_dict()).")
    seed = models.IntegerField(default=0)
    library_versions = models.JSONField(default=dict, blank=True)
    device = models.CharField(max_length=40, blank=True, default="")
    sanity = models.JSONField(null=True, blank=True,
                              help_text="Model-parameter randomisation check: spearman, median, passed, reason.")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    lease_token = models.CharField(max_length=32, blank=True, default="", help_text="The holder's claim (common.jobs).")
    lease_expires_at = models.DateTimeField(null=True, blank=True,
                                            help_text="While running: renewed by the worker; once past, the job is resumed.")
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["run", "method"]
        constraints = [models.UniqueConstraint(fields=["run", "method"], name="explanation_job_one_per_run_method",
                                               violation_error_code="explanation_exists",
                                               violation_error_message="This run already has an explanation job "
                                                                       "with this method.")]

    def __str__(self) -> str:
        return f"{self.get_method_display()} of run {self.run_id} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in (self.Status.DONE, self.Status.FAILED, self.Status.CANCELLED)

    @property
    def sanity_passed(self) -> bool | None:
        return None if not self.sanity else bool(self.sanity.get("passed"))


class Outcome(models.TextChoices):
    TP = "TP", "True positive"
    FP = "FP", "False positive"
    FN = "FN", "False negative"
    TN = "TN", "True negative"


class FrameExplanation(models.Model):
    """One test frame explained by one method: the stored map and images, the prediction and the nerve shares."""

    class OutlineSource(models.TextChoices):
        TRACED = "traced", "Traced on this frame"
        CARRIED = "carried", "Carried from the clip's nearest traced frame"
        NONE = "none", "No outline"

    job = models.ForeignKey(ExplanationJob, on_delete=models.CASCADE, related_name="frames")
    frame = models.ForeignKey(Frame, on_delete=models.PROTECT, related_name="explanations")
    hand = models.ForeignKey(Hand, on_delete=models.PROTECT, related_name="explanations")
    box = models.JSONField(help_text="The crop box [x, y, w, h] in frame pixels (the locked manifest's).")
    mm_per_px = models.FloatField(help_text="Crop millimetres per crop pixel.")
    attribution = models.FileField(max_length=300, help_text="Compressed float16 .npz ('attribution', crop size).")
    crop = models.FileField(max_length=300, help_text="The grey crop as the model saw it (PNG).")
    heatmap = models.FileField(max_length=300, help_text="The map alone, transparent where ~0 (PNG).")
    overlay = models.FileField(max_length=300, help_text="The map over the crop (PNG).")
    probability = models.FloatField(help_text="The model's CTS probability of this frame.")
    label = models.PositiveSmallIntegerField(help_text="0 control, 1 CTS (the locked manifest's).")
    frame_outcome = models.CharField(max_length=2, choices=Outcome.choices)
    hand_probability = models.FloatField(help_text="Mean CTS probability of the hand's test frames.")
    hand_outcome = models.CharField(max_length=2, choices=Outcome.choices)
    shares = models.JSONField(null=True, blank=True,
                              help_text="Attribution shares in nerve, ring and outside beside their area shares.")
    outline_source = models.CharField(max_length=8, choices=OutlineSource.choices)
    outline_frame = models.ForeignKey(Frame, on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
                                      help_text="The traced frame the outline comes from (traced or carried).")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["job", "hand", "frame__index"]
        constraints = [models.UniqueConstraint(fields=["job", "frame"], name="frame_explanation_one_per_job_frame",
                                               violation_error_code="frame_explained",
                                               violation_error_message="This job already explains this frame.")]
        indexes = [models.Index(fields=["frame_outcome"]), models.Index(fields=["hand_outcome"])]

    def __str__(self) -> str:
        return f"{self.job.get_method_display()} of {self.frame} (run {self.job.run_id})"
