"""The data: its contract (columns, ranges, levels), loading with validation and deduplication,
and the seeded train/test split. Nothing here is fit on data."""
