"""One module per console page; each is a view over the domain services."""
