"""Worker identifiers from marketplaces are personal data: masked for whoever lacks the permission.

``mask_worker_id`` turns an id into a stable pseudonym (a keyed hash, so the same worker masks the same way
in every export and rows still join, but the id cannot be recovered without the site's secret key).
Users with ``workforce.view_worker_identity`` (finance pays workers; ops managers contact them) see ids
as given.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from django.conf import settings

IDENTITY_PERMISSION = "workforce.view_worker_identity"


def can_see_worker_ids(user: Any) -> bool:
    return bool(user is not None and user.has_perm(IDENTITY_PERMISSION))


def mask_worker_id(external_id: str) -> str:
    if not external_id:
        return ""
    digest = hmac.new(settings.SECRET_KEY.encode(), external_id.encode(), hashlib.sha256).hexdigest()
    return f"masked-{digest[:12]}"


def worker_id_for(user: Any, external_id: str) -> str:
    """``external_id`` as ``user`` may see it."""
    return external_id if can_see_worker_ids(user) else mask_worker_id(external_id)
