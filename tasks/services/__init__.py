"""Services: every write of the labeling pipeline goes through one of these functions."""
