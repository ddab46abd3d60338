"""The mail templates that exist, and the context each one needs."""

from __future__ import annotations

# name -> context keys the template reads (secrets are passed separately, sealed)
TEMPLATES: dict[str, tuple[str, ...]] = {
    "email_changed_old": ("first_name", "new_email"),
    "email_changed_new": ("first_name", "old_email"),
}
