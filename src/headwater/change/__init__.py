"""Change management (band 4): versions, environments; releases and plans arrive later."""
