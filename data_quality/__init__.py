"""Quality rules for every stage, as plain functions: no orchestration imports."""
