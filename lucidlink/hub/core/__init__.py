"""The hub's rules: transaction functions ``fn(tx, ...)`` over the metadata store.

Each module owns one concern (the inode tree, the namespace operations, file contents,
locks, sessions, Connect, the journal, GC marks, ...). Nothing here knows HTTP.
"""
