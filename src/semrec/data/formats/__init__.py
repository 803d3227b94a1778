"""One reader per file format; each returns a :class:`semrec.data.Dataset`."""
