-- One PostgreSQL for the stack, one database per store (run once, when the volume is new).
CREATE DATABASE mlflow;
CREATE DATABASE optuna;
CREATE DATABASE predictions;
