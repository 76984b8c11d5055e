"""boardfleet central side: CLI, inventory, agent installer and fleet service."""

__version__ = "0.1.0"
