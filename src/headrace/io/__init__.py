"""Reading and writing asset values: tables as Parquet, other objects by declared format."""
