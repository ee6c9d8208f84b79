"""Mail (SMTP or archive-only), the outbox, reports and notifications to the people concerned."""
