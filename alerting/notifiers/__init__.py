"""Notification channels, one module each, with their config beside them."""
