"""The config layer: value checks and one-line errors (`checks`), class schemas and composing (`schemas`),
validation of a resolved config (`validate`) and of every job of a command line (`preflight`)."""

from overparam.config.checks import (
    Check,
    ConfigError,
    boolean,
    choice,
    fail,
    flatten,
    integer,
    is_int,
    is_number,
    number,
    optional,
    show,
    suggest,
    text,
)
from overparam.config.schemas import CONF_DIR, compose, locate, parameters, schema, target_path

__all__ = ["CONF_DIR", "Check", "ConfigError", "boolean", "choice", "compose", "fail", "flatten", "integer", "is_int",
           "is_number", "locate", "number", "optional", "parameters", "schema", "show", "suggest", "target_path",
           "text"]
