"""The HTTP service: the Litestar app, request and response bodies, the model holder that follows
the registry alias, the predictors, and the request-head deadline uvicorn lacks."""
