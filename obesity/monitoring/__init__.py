"""Watching what is served: the window of logged traffic, its drift from the training data
(Evidently), and a retrain when it drifted. Entry point: `python -m obesity.monitor`."""
