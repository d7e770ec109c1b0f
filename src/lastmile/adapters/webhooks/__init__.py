"""Webhook delivery over HTTP and the Drive background workers."""
