"""LucidHub: the filespace server (auth, namespace, file versions, blocks, journal)."""
