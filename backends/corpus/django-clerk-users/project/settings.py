"""Settings of a Django API using django-clerk-users 0.4.1, as its README shows.

README "Quick Start": "django_clerk_users" in INSTALLED_APPS; CLERK_SECRET_KEY,
CLERK_WEBHOOK_SIGNING_KEY and CLERK_FRONTEND_HOSTS (from environment variables, as its
"Production Checklist" says); AUTH_USER_MODEL = "django_clerk_users.ClerkUser"; its
ClerkAuthMiddleware after Django's AuthenticationMiddleware; the Clerk-only
AUTHENTICATION_BACKENDS; `manage.py migrate` (the profile's setup). Logging for
django_clerk_users.* as the checklist asks. The rest is `startproject` trimmed to an API, on
Postgres, with django-cors-headers for the SPA's origins (its README's settings).
The organizations sub-app is not installed: `@clerk_org_required` reads `request.org`, which
ClerkAuthMiddleware sets from the token (middleware/auth.py:172); the sub-app only maps that
id to rows its webhooks fill.
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
    "django_clerk_users",
]

MIDDLEWARE = [
    "corsheaders.middleware.CorsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_clerk_users.middleware.ClerkAuthMiddleware",  # after AuthenticationMiddleware
]

ROOT_URLCONF = "project.urls"
WSGI_APPLICATION = "project.wsgi.application"

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "HOST": os.environ.get("DB_HOST", "localhost"),
        "PORT": os.environ.get("DB_PORT", "5432"),
        "NAME": os.environ.get("DB_NAME", "app"),
        "USER": os.environ.get("DB_USER", "postgres"),
        "PASSWORD": os.environ.get("DB_PASSWORD", ""),
    }
}

# django-clerk-users (README "2. Configure settings", "3. Set the user model", "5. Add
# authentication backend")
CLERK_SECRET_KEY = os.environ.get("CLERK_SECRET_KEY")
CLERK_WEBHOOK_SIGNING_KEY = os.environ.get("CLERK_WEBHOOK_SIGNING_KEY")
CLERK_FRONTEND_HOSTS = os.environ.get("CLERK_FRONTEND_HOSTS", "")  # comma-separated is accepted
AUTH_USER_MODEL = "django_clerk_users.ClerkUser"
AUTHENTICATION_BACKENDS = ["django_clerk_users.authentication.ClerkBackend"]

# django-cors-headers
CORS_ALLOWED_ORIGINS = [o for o in os.environ.get("CORS_ORIGINS", "").split(",") if o]
CORS_ALLOW_CREDENTIALS = True

# "Configure application logging for django_clerk_users.* so authentication, webhook, and
# sync failures are visible in production."
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"django_clerk_users": {"handlers": ["console"], "level": "INFO"}},
}

USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
