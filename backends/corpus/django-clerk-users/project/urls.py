from django.urls import path
from django_clerk_users.webhooks import clerk_webhook_view

from .views import health, me, org

urlpatterns = [
    path("health", health),
    path("api/me", me),
    path("api/org", org),
    path("webhooks/clerk/", clerk_webhook_view, name="clerk_webhook"),  # README "7. Configure webhooks"
]
