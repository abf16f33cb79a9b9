"""Scrapy spiders of the authority crawler (one generic spider)."""
