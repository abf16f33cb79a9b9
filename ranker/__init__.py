"""Query -> ranked passages: retrievers, fusion, authority prior, filters, evaluation."""
