"""SageMaker Ground Truth on our side: importing a finished job's files, running a Job as a labeling
job (publish, follow, stop, collect) and booking its costs. ``importing`` is the one path every
worker response takes into assignments and answers, whether read from files or collected from S3."""
