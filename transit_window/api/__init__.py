"""HTTP infrastructure shared by the feature routers: problems, dependencies, limits, ops endpoints."""
