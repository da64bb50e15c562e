"""Hydra entry point: `python run.py [overrides]`, `python run.py -m key=a,b,c ...`."""

import sys

import hydra
from omegaconf import DictConfig


@hydra.main(config_path="conf", config_name="config", version_base="1.3")
def main(config: DictConfig) -> float | None:
    from overparam.jobs.entry import run_from_hydra

    return run_from_hydra(config)


if __name__ == "__main__":
    from overparam.config.preflight import preflight
    from overparam.jobs.resolvers import register_resolvers

    register_resolvers()  # ${overparam.n_jobs:...} in conf/hydra/launcher/local_gpus.yaml

    preflight(sys.argv[1:])  # every job's config is validated before the first one starts
    main()
