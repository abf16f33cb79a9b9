"""Documents -> passages -> stores and indexes (SQLite, Lucene BM25, FAISS), and the index folder."""

__version__ = "0.1.0"
