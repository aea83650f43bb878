"""Small shared helpers: registries, dataclass configs, atomic file writes."""
