from django.urls import include, path
from rest_framework import routers

from .views import MeViewSet, health

router = routers.DefaultRouter()
router.register(r"me", MeViewSet, basename="me")

urlpatterns = [
    path("health", health),
    path("api/", include(router.urls)),
]
