"""Sign-in through an identity provider (SAML 2.0 or OpenID Connect) that provisions the
user just in time, through the same directory write path as SCIM pushes."""
