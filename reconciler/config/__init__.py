"""Loading the desired-state YAML, with file:line provenance for every value."""
