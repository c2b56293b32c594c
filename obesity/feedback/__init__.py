"""The truth after deployment: labels for served predictions (the store beside the prediction
log, POST /feedback, `python -m obesity.feedback FILE`) and the labelled traffic as data
(`python -m obesity.feedback export`)."""
