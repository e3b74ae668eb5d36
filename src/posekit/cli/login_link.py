"""The one-time login link ``posekit serve`` and ``posekit demo`` print (as Jupyter
prints its token URL), so that the one-command demo needs no password.

On a loopback host, a workspace without users gets an admin named ``admin``
without a password (password login is impossible for it until ``posekit users
reset-password admin``), and the console shows a link that logs the browser in as
that admin once. Whoever reads the console of a loopback server is its owner.
"""

from __future__ import annotations

from typing import Any

__all__ = ["FIRST_ADMIN", "LOOPBACK_HOSTS", "serve_login_link"]

FIRST_ADMIN = "admin"
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def serve_login_link(ws: Any, host: str, port: int, *, ttl_s: float, say: Any) -> str | None:
    """Make sure an admin exists (loopback only) and return a one-time login URL.

    Args:
        ws: The server's :class:`~posekit.store.Workspace`.
        host: The interface the server listens on.
        port: Its port.
        ttl_s: How long the link stays valid.
        say: Prints a message (to standard error).

    Returns:
        ``http://HOST:PORT/login/link?token=...`` (a link for the ``admin`` user, else
        the first active admin), or None when the host is not loopback or there is no
        active admin.
    """
    users = ws.list_users()
    if host not in LOOPBACK_HOSTS:
        if not users:
            say(
                "posekit: this workspace has no users yet: create the first admin with "
                "'posekit users create NAME --admin'"
            )
        return None
    if not users:
        ws.create_user(FIRST_ADMIN, None, admin=True)
        say(
            f"posekit: created the admin user '{FIRST_ADMIN}' without a password (log in with "
            f"the link below; 'posekit users reset-password {FIRST_ADMIN}' sets one)"
        )
        users = ws.list_users()
    admins = [u for u in users if u.is_admin and u.is_active]
    if not admins:
        return None
    admin = next((u for u in admins if u.username == FIRST_ADMIN), admins[0])
    token = ws.create_login_link(admin.id, ttl_s=ttl_s)
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/login/link?token={token}"
