"""AWS Lambda handlers for Ground Truth custom workflows. They import ``tasks.aggregation`` (numpy and
pandas) and boto3, never Django, so they can be packaged on their own:
``consolidation.handler`` (post-annotation) and ``pre_annotation.handler``."""
