"""SageMaker Ground Truth: a Job runs as one labeling job.

``connector`` talks to SageMaker and S3 (boto3, imported only there); ``formats`` parses Ground Truth's
files; ``lambdas`` knows AWS's built-in Lambda ARNs; ``config`` holds the settings and their check.
"""
