from django.urls import path

from studyapp.annotations import review

from . import pages, views

app_name = "clips"

urlpatterns = [
    path("frames/<int:pk>/image.png", views.frame_image, name="frame-image"),
    path("hands/<int:hand_pk>/upload/", pages.clip_upload, name="upload"),
    path("agreement/", pages.agreement, name="agreement"),
    path("worklist/", pages.worklist, name="worklist"),
    path("review/", review.review, name="review"),
    path("review/frames/<int:pk>/", review.review_frame, name="review-frame"),
    path("review/hands/<int:pk>/", review.review_hand, name="review-hand"),
    path("<int:pk>/", pages.clip_detail, name="detail"),
    path("<int:pk>/progress/", pages.clip_progress, name="progress"),
    path("<int:pk>/spacing/", pages.clip_spacing, name="spacing"),
    path("<int:pk>/site/", pages.clip_site, name="site"),
    path("<int:pk>/retry/", pages.clip_retry, name="retry"),
    path("<int:pk>/annotate/", pages.clip_annotate, name="annotate"),
    path("<int:pk>/assign/", pages.clip_assign, name="assign"),
    path("<int:pk>/take/", pages.clip_take, name="take"),
    path("<int:pk>/release/", pages.clip_release, name="release"),
]
