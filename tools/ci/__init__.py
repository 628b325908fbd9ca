"""CI regression auto-tuning: baseline files, re-measurement, the regression decision and its reports."""
