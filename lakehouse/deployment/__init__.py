"""How the lakehouse runs on its host: instance set-up, run launcher, process hygiene."""
