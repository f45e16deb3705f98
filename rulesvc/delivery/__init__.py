"""Delivery: webhook subscriptions and signed deliveries of the action feed (`service`, `webhooks`), the
topics that wake waiting workers (`notify`) and the webhook store's port (`ports`)."""
