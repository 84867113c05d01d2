"""Hardened Django settings: secrets from the environment, explicit CORS origins."""

import os

SECRET_KEY = os.environ["DJANGO_SECRET_KEY"]
DEBUG = os.environ.get("DJANGO_DEBUG") == "1"
INSTALLED_APPS = ["django.contrib.auth", "corsheaders"]
CORS_ALLOWED_ORIGINS = ["https://app.example.com"]
CORS_ALLOW_CREDENTIALS = True
SESSION_COOKIE_SECURE = True
