"""Models (band 2): parse SQL files, read their dependencies, order them, render them."""

from headwater.models.dag import Dag
from headwater.models.parse import Model, Ref, Template, parse_model, quote_table, render

__all__ = ["Dag", "Model", "Ref", "Template", "parse_model", "quote_table", "render"]
