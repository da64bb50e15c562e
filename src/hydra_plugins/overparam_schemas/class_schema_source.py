"""A Hydra config source (`overparam://`, in conf/config.yaml's `hydra.searchpath`) whose configs are classes.

`schema/overparam.tasks.life.LifeTask` is the schema of that class (`overparam.config.schemas.schema`): its
constructor's keyword parameters with their defaults. Only the class a config names is imported, when Hydra loads
it, so a task family that is not used is never imported (and an optional dependency of one never breaks another).
"""

from __future__ import annotations

from hydra.core.object_type import ObjectType
from hydra.plugins.config_source import ConfigLoadError, ConfigResult, ConfigSource
from omegaconf import OmegaConf

GROUP = "schema"


class ClassSchemaSource(ConfigSource):
    @staticmethod
    def scheme() -> str:
        return "overparam"

    def _class_path(self, config_path: str) -> str | None:
        """`schema/a.b.C.yaml` -> `a.b.C`; None for any other path."""
        group, _, name = config_path.rstrip("/").partition("/")
        if group != GROUP or not name or "/" in name:
            return None
        return name[: -len(".yaml")] if name.endswith(".yaml") else name

    def load_config(self, config_path: str) -> ConfigResult:
        from overparam.config.schemas import locate, schema

        class_path = self._class_path(config_path)
        if class_path is None:
            raise ConfigLoadError(f"overparam:// holds only {GROUP}/<module.Class>, not {config_path}")
        node = OmegaConf.create(schema(locate(class_path)))
        return ConfigResult(config=node, path=f"{self.scheme()}://{self.path}", provider=self.provider,
                            header={"package": None})

    def available(self) -> bool:
        return True

    def is_group(self, config_path: str) -> bool:
        return config_path.rstrip("/") == GROUP

    def is_config(self, config_path: str) -> bool:
        class_path = self._class_path(config_path)
        return class_path is not None and "." in class_path and _importable(class_path)

    def list(self, config_path: str, results_filter: ObjectType | None) -> list[str]:
        return []  # classes are found by name, not listed


def _importable(class_path: str) -> bool:
    """Whether `module.Class` names a class; imports that module only."""
    import importlib

    module, _, name = class_path.rpartition(".")
    try:
        return hasattr(importlib.import_module(module), name)
    except ImportError:
        return False
