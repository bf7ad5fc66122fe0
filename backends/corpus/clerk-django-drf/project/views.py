"""The protected route: the README's ExampleViewset with the ClerkAuthenticated permission."""

from clerk_django.permissions.clerk import ClerkAuthenticated
from django.http import JsonResponse
from rest_framework import viewsets
from rest_framework.response import Response


def health(request):
    return JsonResponse({"status": "ok"})


class MeViewSet(viewsets.ViewSet):
    permission_classes = [ClerkAuthenticated]

    def list(self, request):
        user_id = request.clerk_user.get("id")
        return Response({"user_id": user_id})
