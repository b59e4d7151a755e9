"""The normalized directory in Redis: records, indexes, members, the change stream's writes, tokens."""
