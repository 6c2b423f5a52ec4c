def register(subparsers, benchmarks):
    """Filled in by this stage."""
