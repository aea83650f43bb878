"""The whole pipeline on one device (``squeezenas demo``): its config, stages and report."""

from squeezenas.pipeline.config import PRESETS, DemoConfig, demo_config
from squeezenas.pipeline.stages import run_demo

__all__ = ["PRESETS", "DemoConfig", "demo_config", "run_demo"]
