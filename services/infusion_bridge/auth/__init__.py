"""Sign-in: verify bearer tokens from the identity provider (OIDC, JWKS) into a Principal."""
