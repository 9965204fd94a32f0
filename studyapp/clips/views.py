from django.contrib.auth.decorators import login_required, permission_required
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404

from .models import Frame


@login_required
@permission_required("clips.view_frame", raise_exception=True)
def frame_image(request, pk):
    """Frames are clinical images: served only to signed-in users with the right role, never as public media."""
    frame = get_object_or_404(Frame, pk=pk)
    try:
        handle = frame.image.open("rb")
    except FileNotFoundError:
        raise Http404("The frame's image is missing; re-run the extraction.") from None
    response = FileResponse(handle, content_type="image/png")
    response["Cache-Control"] = "private, max-age=3600"
    return response
