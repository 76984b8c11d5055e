"""Collectors, one per module; each registers itself with ``@register``."""
