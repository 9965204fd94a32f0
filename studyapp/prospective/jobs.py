"""The background job that predicts one hand with the frozen model (light: no torch here)."""

from studyapp.ops import services as ops_services

PREDICT_JOB = "prospective_predict"
PROSPECTIVE_PREDICTION = ops_services.background_job_kind(PREDICT_JOB, "prospective.predict_hand")
