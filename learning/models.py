# Labels, their delivery to training stores and retraining arrive with their own issue.
