"""Accounts: who is asking (the principal) and what it may see and do."""
