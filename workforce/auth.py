"""Authentication backend that loads a user's worker identity in the same query as the user."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend


class WorkerAwareBackend(ModelBackend):
    """``ModelBackend`` whose per-request user lookup also joins ``user.worker`` (one query, not two)."""

    def get_user(self, user_id: Any) -> Any:
        user_model = get_user_model()
        try:
            user = user_model._default_manager.select_related("worker").get(pk=user_id)
        except user_model.DoesNotExist:
            return None
        return user if self.user_can_authenticate(user) else None
