"""Models (band 2): parse SQL files, read their dependencies, order them, render them."""

from headwater.models.dag import Dag
from headwater.models.parse import Model, Ref, parse_model
from headwater.models.renderer import Compiled, Renderer, render

__all__ = ["Compiled", "Dag", "Model", "Ref", "Renderer", "parse_model", "render"]
