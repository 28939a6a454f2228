"""The one error type of the training function that means "the caller asked for something we cannot do"."""


class TrainingInputError(ValueError):
    """Bad training input (unknown estimator or parameter, bad CSV, ...): answered 400 with this message."""
