"""Django settings with the configuration flaws Bastion reads from settings modules."""

SECRET_KEY = "django-insecure-0123456789abcdefghijklmnopqrstuvwxyz"
DEBUG = True
INSTALLED_APPS = ["django.contrib.auth", "corsheaders"]
CORS_ALLOW_ALL_ORIGINS = True
CORS_ALLOW_CREDENTIALS = True
SESSION_COOKIE_SECURE = False
