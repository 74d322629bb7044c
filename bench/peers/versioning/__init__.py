"""The versioning bench's peer (DVC) and the helpers both sides of it share."""
