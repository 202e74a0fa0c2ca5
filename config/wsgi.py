import os

from django.core.wsgi import get_wsgi_application

from config.bodyguard import BodyGuard

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
# Idle timeout and minimum rate on request bodies, under the app so that every body read is guarded.
application = BodyGuard(get_wsgi_application())
