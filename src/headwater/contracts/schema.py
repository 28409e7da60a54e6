"""JSON Schema of each project file kind, so editors can autocomplete and validate YAML."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel

from headwater.contracts.specs import Contract, ModelConfig, ModelSidecar, Seed, Settings

KINDS: dict[str, type[BaseModel]] = {
    "headwater": Settings,
    "contract": Contract,
    "model-header": ModelConfig,
    "model-sidecar": ModelSidecar,
    "seed": Seed,
}


def write_schemas(folder: Path) -> list[Path]:
    """Write `<kind>.schema.json` for every file kind into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for kind, spec in KINDS.items():
        schema = spec.model_json_schema()
        if spec is Contract:
            schema["properties"].pop("name", None)  # set from the file name
            schema["properties"].pop("zone", None)  # set from the folder
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        schema["title"] = f"headwater {kind}"
        path = folder / f"{kind}.schema.json"
        path.write_text(json.dumps(schema, indent=2) + "\n", encoding="utf-8")
        written.append(path)
    return written
