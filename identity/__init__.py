"""Signing in the way NHS staff do: OpenID Connect single sign-on (CIS2-style claims → a professional in a role)
and launch in context from a partner's clinical system (docs/sign-in.md, ADR 0010)."""
