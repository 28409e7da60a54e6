"""Models (band 2): parse SQL files, read their dependencies, order them, render them."""

from headwater.models.dag import Dag
from headwater.models.parse import Model, Ref, parse_model, render

__all__ = ["Dag", "Model", "Ref", "parse_model", "render"]
