"""Password rules for staff accounts (AUTH_PASSWORD_VALIDATORS): longer, and mixing character kinds."""

from __future__ import annotations

import string
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError


class StaffPasswordValidator:
    """Staff passwords need ``STAFF_PASSWORD_MIN_LENGTH`` characters and three of: lower case, upper case,
    digits, other characters. Crowd workers keep Django's ordinary rules.

    Applies wherever Django validates a password for a user that is staff (the admin's password forms,
    ``changepassword``, password change); make a user staff before setting their password in the admin.
    """

    def validate(self, password: str, user: Any = None) -> None:
        if user is None or not getattr(user, "is_staff", False):
            return
        errors = []
        if len(password) < settings.STAFF_PASSWORD_MIN_LENGTH:
            errors.append(f"Staff passwords need at least {settings.STAFF_PASSWORD_MIN_LENGTH} characters.")
        kinds = [
            any(c in string.ascii_lowercase for c in password),
            any(c in string.ascii_uppercase for c in password),
            any(c.isdigit() for c in password),
            any(not c.isalnum() for c in password),
        ]
        if sum(kinds) < 3:
            errors.append("Staff passwords must mix three of: lower case, upper case, digits, symbols.")
        if errors:
            raise ValidationError(errors, code="staff_password_too_weak")

    def get_help_text(self) -> str:
        return (
            f"Staff passwords need at least {settings.STAFF_PASSWORD_MIN_LENGTH} characters and three of: "
            "lower case, upper case, digits, symbols."
        )
