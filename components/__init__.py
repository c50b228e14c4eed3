"""The platform's components, one package per concern (README "Layout" has the map and its rules)."""
