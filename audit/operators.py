"""Who runs a management command, as far as the machine knows: named on the audit trail when no account is."""

import getpass


def os_user() -> str:
    """The operating-system user, or "" when there is none to name (a container without a passwd entry)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return ""
