"""App-wide HTTP concerns shared by /scim and /admin: request bodies, headers, rate limits."""
