"""The fleet dashboard: a PNG of the recent hours and days, shown on its asset's page."""
