// (placeholder: filled in by the rule-set work)
