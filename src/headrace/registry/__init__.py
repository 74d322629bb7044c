"""The model registry: model versions with flavors and signatures, aliases, lifecycle."""
