from django.contrib import admin
from simple_history.admin import SimpleHistoryAdmin

from .models import StudySettings

admin.site.register(StudySettings, SimpleHistoryAdmin)
