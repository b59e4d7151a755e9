"""Marshmallow schemas of the HTTP edges: SCIM request envelopes and the admin API."""
