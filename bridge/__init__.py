"""Entra ID SCIM bridge: receives Entra provisioning, stores it, relays it downstream."""
