"""Discovery: notice every reservation slot the moment it opens, across the next days."""
