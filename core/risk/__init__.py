"""Risk: the service catalogue, CDN edge data, port prevalence and the asset score.

Data-driven and explainable: colours come from `data/catalogue.toml`, CDN edges from
`data/cdn.toml`, and every point of a score names the rule that gave it (scoring.py).
"""
