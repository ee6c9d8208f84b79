"""The service layer: the one way entities are created, read, changed and archived."""
