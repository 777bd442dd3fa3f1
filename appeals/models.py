# Appeals (decision notices, the affected person's portal) arrive with their own issue.
