"""The routes: the README's decorators (django_clerk_users.decorators)."""

from django.http import JsonResponse
from django_clerk_users.decorators import clerk_org_required, clerk_user_required


def health(request):
    return JsonResponse({"status": "ok"})


@clerk_user_required
def me(request):
    return JsonResponse({"user_id": request.user.clerk_id, "email": request.user.email})


@clerk_org_required
def org(request):
    # decorators.py's own example: the active organization's id from the token.
    return JsonResponse({"user_id": request.user.clerk_id, "org_id": request.org})
