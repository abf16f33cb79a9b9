"""Elasticsearch backend: mapping and request bodies, client settings, bulk writer + alias switch, searcher."""
