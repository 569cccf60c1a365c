"""Churn and lifetime-value modelling: a plain library (pandas, scikit-learn, scipy)."""
