"""Notification channel adapters: log, webhook, SMTP e-mail."""
