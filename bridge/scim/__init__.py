"""SCIM 2.0 protocol (RFC 7643 / RFC 7644): parsing, validation, filters, PATCH, views."""
