"""Settings of a Django REST framework API using clerk-django 1.0.3, as its README shows.

README "Usage": CLERK_SECRET_KEY and CLERK_PEM_PUBLIC_KEY in the environment,
ALLOWED_PARTIES in settings.py, clerk_django.middlewares.clerk.ClerkAuthMiddleware after
Django's AuthenticationMiddleware. The rest is `startproject` trimmed to an API, with
django-cors-headers for the SPA's origins (its README's settings).
"""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "django-insecure-corpus-backend")
DEBUG = False
ALLOWED_HOSTS = os.environ.get("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1").split(",")

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "corsheaders",
    "rest_framework",
]

MIDDLEWARE = [
    "corsheaders.middleware.CorsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "clerk_django.middlewares.clerk.ClerkAuthMiddleware",
]

ROOT_URLCONF = "project.urls"
WSGI_APPLICATION = "project.wsgi.application"

DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": BASE_DIR / "db.sqlite3"}}

# clerk-django: the origins whose tokens (azp) are accepted.
ALLOWED_PARTIES = [p for p in os.environ.get("CLERK_AUTHORIZED_PARTIES", "").split(",") if p]

# django-cors-headers
CORS_ALLOWED_ORIGINS = [o for o in os.environ.get("CORS_ORIGINS", "").split(",") if o]
CORS_ALLOW_CREDENTIALS = True

USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
