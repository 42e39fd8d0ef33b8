"""Run parameters, paths and where credentials come from."""

from churn.settings.parameters import (
    SHOP_TIME_ZONE,
    SUPPORTED_LOCALES,
    Locale,
    RunParameters,
    describe_validation_error,
    shop_today,
)

__all__ = [
    "SHOP_TIME_ZONE",
    "SUPPORTED_LOCALES",
    "Locale",
    "RunParameters",
    "describe_validation_error",
    "shop_today",
]
