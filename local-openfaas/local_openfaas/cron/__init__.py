"""What OpenFaaS's cron-connector does, in the local OpenFaaS: invoke functions annotated `topic: cron-function` on
their `schedule` (README.md)."""
