"""The mail templates that exist, and the context each one needs.

Adding a template: write ``mail_templates/<name>.toml`` with a ``[en]``, ``[fr]``, ``[de]``, ``[es]`` and
``[nl]`` table (``subject`` and ``body``; optionally ``action`` and ``details``, see ``notify/render.py``),
then add one line here. ``tests/notify/test_render.py`` renders every template in every language.
"""

from __future__ import annotations

# name -> keys the template reads from the queued context or secrets. The operator's name and support
# address (``operator_name``, ``support_email``) are always available and are not listed.
TEMPLATES: dict[str, tuple[str, ...]] = {
    # App accounts (accounts.service). ``apps``: a list of "portal" / "mobile_app"; ``app``: one of them.
    # ``link`` is a secret: pass it in ``secrets``.
    "app_invitation": ("first_name", "occupier_name", "apps", "link", "expires_hours", "resent"),
    "app_second_invitation": ("first_name", "app", "password_set", "portal_url"),
    "password_reset": ("first_name", "link", "expires_hours"),
    "welcome": ("first_name", "occupier_name", "portal_url", "apps"),
    "email_changed_old": ("first_name", "new_email"),
    "email_changed_new": ("first_name", "old_email"),
    "wifi_password": ("first_name", "username", "homesite", "device_limit", "reason", "password"),
}
