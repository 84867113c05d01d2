"""Test doubles for what a service talks to, usable from pytest and by the demo: an OIDC identity provider."""

from bastion.doubles.oidc import OIDCClient, OIDCError, OIDCProvider, OIDCUser, pkce_challenge
from bastion.doubles.serve import serve_wsgi

__all__ = ["OIDCClient", "OIDCError", "OIDCProvider", "OIDCUser", "pkce_challenge", "serve_wsgi"]
