"""Storage (band 1): the catalog database and the Iceberg lake."""
